import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../../src/config/load.ts'
import { modeOf, workerSettingsOf } from '../../src/config/modes.ts'
import { Executors } from '../../src/modes/executors.ts'
import { InProcessExecutor } from '../../src/modes/inprocess.ts'
import { runCli, startCli } from '../helpers/cli.ts'

describe('mode configuration', () => {
  it('defaults to inprocess; a top-level mode and each extension’s own mode', () => {
    expect(resolveConfig({}).mode).toBe('inprocess')
    const c = resolveConfig({ mode: 'worker', extensions: { calc: { mode: 'inprocess' }, hello: {} } })
    expect(modeOf(c, 'calc')).toBe('inprocess')
    expect(modeOf(c, 'hello')).toBe('worker')
    expect(modeOf(c, 'unlisted')).toBe('worker')
  })

  it('refuses unknown modes and bad worker settings, all problems listed', () => {
    expect(() => resolveConfig({ mode: 'thread', extensions: { a: { mode: 3 } } })).toThrow(/"mode" must be one of inprocess, worker, fastcgi, cgi, got "thread"[\s\S]*"extensions\.a\.mode" must be one of/)
    expect(() => resolveConfig({ worker: { pool: 0, hangGrace: 'soon', resourceLimits: { maxOldGenerationSizeMb: -1, heap: 1 }, colour: 'red' } }))
      .toThrow(/"worker\.pool" must be an integer from 1 to 64[\s\S]*"worker\.hangGrace"[\s\S]*maxOldGenerationSizeMb" must be a number[\s\S]*"worker\.resourceLimits\.heap"[\s\S]*"worker\.colour"/)
  })

  it('an extension’s worker section goes over the top-level one, key by key', () => {
    const c = resolveConfig({ worker: { pool: 2, resourceLimits: { maxOldGenerationSizeMb: 64 } }, extensions: { a: { worker: { pool: 3, maxExternal: '128MB' } } } })
    expect(workerSettingsOf(c, 'a')).toEqual({ pool: 3, resourceLimits: { maxOldGenerationSizeMb: 64 }, maxExternal: 128 * 1024 ** 2, hangGrace: 500 })
    expect(workerSettingsOf(c, 'b')).toEqual({ pool: 2, resourceLimits: { maxOldGenerationSizeMb: 64 }, maxExternal: null, hangGrace: 500 })
  })

  it('a mode this version cannot run is a configuration error naming it', () => {
    const config = resolveConfig({ mode: 'cgi', extensions: { a: { mode: 'fastcgi' } } })
    const executors = new Executors({ config, log: pino({ level: 'silent' }) }, {}, { inprocess: () => new InProcessExecutor() })
    expect(() => executors.check(config)).toThrow(/mode "cgi", "fastcgi" is not available in this version \(available: inprocess\)/)
    expect(executors.get('inprocess').mode).toBe('inprocess')
  })
})

describe('resident serve --mode', () => {
  function project(config: unknown): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-mode-'))
    mkdirSync(path.join(dir, 'extensions'))
    writeFileSync(path.join(dir, 'extensions', 'hello.ts'), `import { Extension } from 'resident-host'
export default class H extends Extension { greet() { return { hi: 1 } } }`)
    writeFileSync(path.join(dir, 'extensions', 'calc.ts'), `import { Extension } from 'resident-host'
export default class C extends Extension { add() { return 2 } }`)
    writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify(config))
    return dir
  }

  it('lists each extension’s mode at start-up and shows it on status', async () => {
    const cwd = project({ port: 0, extensions: { calc: { mode: 'inprocess' } } })
    const a = await startCli(['serve'], { cwd })
    try {
      expect(a.output()).toMatch(/default mode inprocess/)
      expect(a.output()).toMatch(/\/calc\/\s+inprocess/)
      const status = await (await fetch(`${a.url}/hello/greet`)).json()
      expect(status).toEqual({ hi: 1 })
      const s = await (await fetch(`${a.url}/_resident/status`)).json() as { host: { mode: string }; extensions: Array<{ name: string; mode: string }> }
      expect(s.host.mode).toBe('inprocess')
      expect(s.extensions.find((e) => e.name === 'hello')?.mode).toBe('inprocess')
    } finally {
      a.child.kill('SIGTERM')
      await a.exited
    }
  })

  it('--mode refuses an unknown mode with exit code 2', async () => {
    const r = await runCli(['serve', '--mode', 'thread'], { cwd: project({ port: 0 }) })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--mode must be one of inprocess, worker, fastcgi, cgi, got "thread"/)
  })
})
