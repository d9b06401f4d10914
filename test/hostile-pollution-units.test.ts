import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import { parseForm } from '../src/dispatch/body.ts'
import { coerceParams, mergeInputs } from '../src/modes/params.ts'
import { InProcessExecutor } from '../src/modes/inprocess.ts'

// Whatever else is in the process (a package, the test itself) may pollute Object.prototype; the
// loader and the request path must still read only what is there. No server runs in this file:
// packages such as prom-client walk their own objects with for…in and would throw first.
const POISON = ['polluted', 'default', 'optional', 'params', 'methods', 'accepts', 'config', 'idleTimeout', 'admin', 'token',
  'enabled', 'entry', 'priority', 'paths', 'commands', 'defaultCommand', 'type', 'items', 'min', 'max', 'pattern', 'stdin', 'plugins']

function pollute(): void {
  for (const k of POISON) (Object.prototype as Record<string, unknown>)[k] = k === 'methods' ? ['DELETE'] : 'x'
}
afterEach(() => { for (const k of POISON) delete (Object.prototype as Record<string, unknown>)[k] })

const LATER = `import { Extension, param } from 'resident-host'
export default class Later extends Extension {
  static commands = { add: { params: { a: param.integer(), b: param.integer({ optional: true }) } } }
  add({ a, b }) { return { sum: a + (b ?? 0) } }
}`

describe('reading by own keys under a polluted Object.prototype', () => {
  it('config, forms and parameters', () => {
    pollute()
    const c = resolveConfig({ port: 0 }, { cwd: '/srv' })
    expect(c.admin).toEqual({ token: null, hosts: [] })
    expect(c.extensions.polluted).toBeUndefined()
    expect(Object.keys(parseForm('a=1'))).toEqual(['a'])
    const specs = { a: Object.assign(Object.create(null), { type: 'integer' }) }
    expect(coerceParams(specs, mergeInputs(parseForm('a=2'), undefined))).toEqual({ a: 2 })
  })

  it('a build, an evaluation and a command table', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-pollution-'))
    try {
      const entry = path.join(dir, 'later.ts')
      writeFileSync(entry, LATER)
      // Packages load before the pollution, as in a running server (a package evaluated after it
      // may break on its own for…in, esbuild's included).
      await (await new InProcessExecutor().load({ name: 'later', entry, generation: 0, config: {}, log: pino({ level: 'silent' }), development: false })).dispose('shutdown')
      pollute()
      const module = await new InProcessExecutor().load({ name: 'later', entry, generation: 1, config: {}, log: pino({ level: 'silent' }), development: false })
      const add = module.table.commands.add!
      expect(add.methods).toEqual(['GET', 'HEAD', 'POST'])
      expect(module.table.defaultCommand).toBeNull()
      expect(coerceParams(add.params!, { a: '2', b: '3' })).toEqual({ a: 2, b: 3 })
      await module.dispose('shutdown')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
