import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

describe('loading and residency of extensions', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      config: { development: true },
      extensions: {
        'counter.ts': `import { Extension } from 'resident-host'
export default class Counter extends Extension {
  n = 0
  increment() { return { count: ++this.n } }
}`,
        'slowinit.ts': `import { Extension } from 'resident-host'
globalThis.__slowInitLoads = (globalThis.__slowInitLoads ?? 0) + 1
export default class Slow extends Extension {
  async init() { await new Promise((r) => setTimeout(r, 200)) }
  index() { return { loads: globalThis.__slowInitLoads } }
}`,
        'flaky.ts': `import { Extension } from 'resident-host'
globalThis.__flakyAttempts = (globalThis.__flakyAttempts ?? 0) + 1
export default class Flaky extends Extension {
  init() { if (globalThis.__flakyAttempts === 1) throw new Error('database not ready') }
  index() { return { attempts: globalThis.__flakyAttempts } }
}`,
        'broken.ts': `import { Extension } from 'resident-host'
export default class Broken extends Extension {
  index() { return { oops: }
}`,
        'notaclass.ts': `export default function () { return 1 }`,
        'helpers/math.ts': `export const double = (x: number): number => x * 2`,
        'usesdep.ts': `import { Extension } from 'resident-host'
import { double } from './helpers/math.ts'
export default class UsesDep extends Extension { index() { return double(21) } }`,
        'thrower.ts': `import { Extension } from 'resident-host'
import { fail } from './helpers/fail.ts'
export default class Thrower extends Extension {
  index() { return fail() }
}`,
        'helpers/fail.ts': `
export function fail(): never {
  throw new Error('deep failure')
}`,
      },
    })
  })
  afterAll(() => t.close())

  it('keeps an extension resident: its state survives between requests', async () => {
    expect((await t.inject('/counter/increment')).json()).toEqual({ count: 1 })
    expect((await t.inject('/counter/increment')).json()).toEqual({ count: 2 })
    expect((await t.inject('/counter/increment')).json()).toEqual({ count: 3 })
  })

  it('concurrent first requests share one load', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => t.inject('/slowinit/')))
    for (const r of rs) expect(r.json()).toEqual({ loads: 1 })
  })

  it('a failing init() is a 500 RES_ERR_LOAD_FAILED, and the next request tries again', async () => {
    const first = await t.inject('/flaky/')
    expect(first.statusCode).toBe(500)
    expect(first.json().error.code).toBe('RES_ERR_LOAD_FAILED')
    expect(first.json().error.message).toContain('database not ready')
    const second = await t.inject('/flaky/')
    expect(second.statusCode).toBe(200)
    expect(second.json()).toEqual({ attempts: 2 })
  })

  it('a build error is a 500 RES_ERR_LOAD_FAILED naming file:line:col', async () => {
    const r = await t.inject('/broken/')
    expect(r.statusCode).toBe(500)
    expect(r.json().error.code).toBe('RES_ERR_LOAD_FAILED')
    const logged = t.logs.filter((l) => l.extension === 'broken').map((l) => l.msg).join('\n')
    expect(logged).toMatch(/broken\.ts:3:\d+: Unexpected "}"/)
    expect((await t.inject('/counter/increment')).statusCode).toBe(200)
  })

  it('a default export that is not an Extension class fails the load with a clear reason', async () => {
    const r = await t.inject('/notaclass/')
    expect(r.statusCode).toBe(500)
    expect(r.json().error.message).toContain('must be a class extending Extension')
  })

  it('bundles the extension’s own files', async () => {
    expect((await t.inject('/usesdep/')).json()).toBe(42)
  })

  it('maps stack traces to the original file, line and column', async () => {
    const r = await t.inject('/thrower/')
    expect(r.statusCode).toBe(500)
    const stack: string = r.json().error.stack
    expect(stack).toContain(`${path.join('helpers', 'fail.ts')}:3:9`)
    expect(stack).toMatch(/thrower\.ts:4:\d+/)
    expect(stack).not.toContain('?gen=')
  })
})

describe('packages', () => {
  let t: TestServer
  beforeAll(async () => {
    const make = (name: string) => `import { Extension } from 'resident-host'
import { marked } from 'marked'
globalThis.__markedCopies ??= new Set()
globalThis.__markedCopies.add(marked)
export default class ${name} extends Extension {
  index() { return { html: marked.parseInline('**x**'), copies: globalThis.__markedCopies.size } }
}`
    t = await startTestServer({ inRepo: true, extensions: { 'one.ts': make('One'), 'two.ts': make('Two') } })
  })
  afterAll(() => t.close())

  it('load once through Node and are shared by every extension and generation', async () => {
    expect((await t.inject('/one/')).json()).toEqual({ html: '<strong>x</strong>', copies: 1 })
    expect((await t.inject('/two/')).json()).toEqual({ html: '<strong>x</strong>', copies: 1 })
    await t.server.registry.reload('one')
    expect((await t.inject('/one/')).json()).toEqual({ html: '<strong>x</strong>', copies: 1 })
  })
})

describe('an author project outside this repository', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({})
    // The author's own copy of 'resident-host' in their node_modules: a different Extension class.
    const pkg = path.join(t.dir, 'node_modules', 'resident-host')
    mkdirSync(pkg, { recursive: true })
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'resident-host', main: 'index.js' }))
    writeFileSync(path.join(pkg, 'index.js'), 'exports.Extension = class Extension {}; exports.copy = "author"')
    t.writeExtension('mine.ts', `import { Extension, HttpError } from 'resident-host'
export default class Mine extends Extension {
  index() { return { hasHost: typeof this.host.setTimeout === 'function' } }
  fail() { throw new HttpError(409, 'conflict') }
}`)
  })
  afterAll(() => t.close())

  it('extends the host’s own Extension, whichever copy the author installed', async () => {
    expect((await t.inject('/mine/')).json()).toEqual({ hasHost: true })
    expect((await t.inject('/mine/fail')).statusCode).toBe(409)
  })
})
