import { rmSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension { hello() { return { hello: 'world' } } }`
const tagger = (tag: string, extra = '') => `import { Filter } from 'resident-host'
export default class T extends Filter {
  ${extra}
  onSendResponse(req, res) { res.setHeader('x-tag', '${tag}') }
  dispose(reason) { (globalThis.__disposed ??= []).push('${tag}:' + reason) }
}`

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

describe('filter reload (API for resident dev / SIGHUP)', () => {
  it('reload(name) swaps to the new generation and disposes the old one; exposes the watch set', async () => {
    const g = globalThis as { __disposed?: string[] }
    g.__disposed = []
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') } })
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v1')
    expect(t.server.filters.inputs('tag')).toEqual([expect.stringMatching(/tag\.ts$/)])
    expect([...t.server.filters.watchSet().keys()]).toEqual(['tag'])
    t.writeFilter('tag.ts', tagger('v2'))
    await t.server.filters.reload('tag')
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v2')
    expect(g.__disposed).toEqual(['v1:reload'])
  })

  it('a failed reload keeps the old chain serving and rejects with the reason', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') } })
    t.writeFilter('tag.ts', 'export default class {  // broken')
    await expect(t.server.filters.reload('tag')).rejects.toMatchObject({ code: 'RES_ERR_FILTER_LOAD_FAILED' })
    t.writeFilter('tag.ts', tagger('v3', 'init() { throw new Error("init failed") }'))
    await expect(t.server.filters.reloadAll()).rejects.toThrow(/init failed/)
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v1')
  })

  it('the status page lists the filters; the admin API reloads them', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1', "static priority = 'high'") } })
    const status = (await t.inject('/_resident/status')).json()
    expect(status.filters).toEqual([{ name: 'tag', priority: 'high', generation: 1, entry: expect.stringMatching(/tag\.ts$/), notifications: ['onSendResponse'], paths: false, faults: 0 }])
    t.writeFilter('tag.ts', tagger('v2'))
    const r = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/filters/tag/reload' })
    expect(r.statusCode).toBe(200)
    expect(r.json().filters).toEqual(['1. tag (medium) onSendResponse'])
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v2')
    expect((await t.inject('/_resident/status')).json().filters[0]).toMatchObject({ name: 'tag', generation: 2 })
    t.writeFilter('tag.ts', 'syntax error (')
    const bad = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/filters/reload' })
    expect(bad.statusCode).toBe(500)
    expect(bad.json().error.code).toBe('RES_ERR_FILTER_LOAD_FAILED')
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v2')
  })

  it('reloadAll picks up added and removed filters', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') }, config: { development: true } })
    t.writeFilter('extra.ts', `import { Filter } from 'resident-host'
export default class X extends Filter { onSendResponse(req, res) { res.setHeader('x-extra', 'yes') } }`)
    await t.server.filters.reloadAll()
    expect(t.server.filters.describe()).toHaveLength(2)
    expect((await t.inject('/echo/hello')).headers['x-extra']).toBe('yes')
  })

  it('a server started without filters takes a first filter by reload when it keeps the hooks (resident dev)', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filterHooks: true })
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBeUndefined()
    t.writeFilter('tag.ts', tagger('late'))
    await t.server.filters.reloadAll()
    expect(t.server.filters.describe()).toHaveLength(1)
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('late')
  })

  it('a server started without filters (and without the hooks) refuses a first filter, loads nothing and keeps serving', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO } })
    t.writeFilter('tag.ts', tagger('late', 'init() { globalThis.__lateInit = true }'))
    await expect(t.server.filters.reloadAll()).rejects.toMatchObject({ code: 'RES_ERR_FILTERS_NEED_RESTART' })
    await expect(t.server.filters.reload('tag')).rejects.toMatchObject({ code: 'RES_ERR_FILTERS_NEED_RESTART' })
    const res = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/filters/reload' })
    expect(res.statusCode).toBe(409)
    expect(res.json().error).toMatchObject({ code: 'RES_ERR_FILTERS_NEED_RESTART', requestId: expect.any(String) })
    expect(res.json().error.message).toMatch(/restart/)
    expect((globalThis as { __lateInit?: boolean }).__lateInit).toBeUndefined()
    expect(t.server.filters.describe()).toEqual([])
    const ok = await t.inject('/echo/hello')
    expect(ok.statusCode).toBe(200)
    expect(ok.headers['x-tag']).toBeUndefined()
    // Reloading with the folder still empty is fine.
    rmSync(path.join(t.filtersDir, 'tag.ts'))
    await expect(t.server.filters.reloadAll()).resolves.toBeUndefined()
  })

  it('a server started with filters keeps its hooks when they are all removed, and takes them back', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') } })
    rmSync(path.join(t.filtersDir, 'tag.ts'))
    await t.server.filters.reloadAll()
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBeUndefined()
    t.writeFilter('tag.ts', tagger('v2'))
    await t.server.filters.reloadAll()
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v2')
  })

  it('a request keeps the chain it started with across a reload', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'tag.ts': tagger('v1', `async onAuthenticate() { await new Promise((r) => globalThis.__release = r) }`) },
    })
    const g = globalThis as { __release?: () => void; __disposed?: string[] }
    g.__disposed = []
    const pending = t.inject('/echo/hello')
    const end = Date.now() + 10_000
    while (!g.__release && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
    const release = g.__release!
    g.__release = undefined
    t.writeFilter('tag.ts', tagger('v2'))
    await t.server.filters.reload('tag')
    expect((await t.inject('/echo/hello')).headers['x-tag']).toBe('v2')
    expect(g.__disposed).toEqual([]) // v1 is still in use
    release()
    expect((await pending).headers['x-tag']).toBe('v1')
    while (g.__disposed.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
    expect(g.__disposed).toEqual(['v1:reload'])
  })
})

describe('filter lifecycle', () => {
  it('disposes every filter on shutdown and releases its host handle', async () => {
    const g = globalThis as { __disposed?: string[]; __ticks?: number }
    g.__disposed = []
    g.__ticks = 0
    const s = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1', 'init() { this.host.setInterval(() => { globalThis.__ticks++ }, 5) }') } })
    await s.close()
    expect(g.__disposed).toEqual(['v1:shutdown'])
    const ticks = g.__ticks
    await new Promise((r) => setTimeout(r, 50))
    expect(g.__ticks).toBe(ticks)
  })

  it('logs a filter failure with a stack that points at the filter source', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'oops.ts': `import { Filter } from 'resident-host'
type Req = { url: string }
export default class Oops extends Filter {
  onRequest(req: Req) {
    if (req.url.length > 0) throw new Error('oops')
  }
}` },
    })
    expect((await t.inject('/echo/hello')).statusCode).toBe(500)
    const line = t.logs.find((l) => l.filter === 'oops' && l.notification === 'onRequest')
    expect((line?.err as { stack?: string } | undefined)?.stack).toMatch(/oops\.ts:5:\d+/)
  })
})

describe('filter loading and config', () => {
  it('a filter that fails to load fails the start-up', async () => {
    await expect(startTestServer({ filters: { 'bad.ts': `import { Filter } from 'resident-host'
export default class B extends Filter { init() { throw new Error('no key') } }` } })).rejects.toMatchObject({ code: 'RES_ERR_FILTER_LOAD_FAILED', message: expect.stringContaining('no key') })
    await expect(startTestServer({ filters: { 'notfilter.ts': 'export default class X {}' } })).rejects.toThrow(/extending Filter/)
    await expect(startTestServer({ filters: { 'prio.ts': `import { Filter } from 'resident-host'
export default class P extends Filter { static priority = 'urgent' }` } })).rejects.toThrow(/priority/)
  })

  it('validates the filters section', () => {
    expect(() => resolveConfig({ filters: { order: 'a' } })).toThrow(/filters.order/)
    expect(() => resolveConfig({ filters: { order: ['a', 'a'] } })).toThrow(/twice/)
    expect(() => resolveConfig({ filters: { bogus: 1 } })).toThrow(/filters.bogus/)
    expect(() => resolveConfig({ filters: { modules: { a: { config: 3 } } } })).toThrow(/filters.modules.a.config/)
    expect(() => resolveConfig({ filters: { modules: { a: { colour: 'red' } } } })).toThrow(/filters.modules.a.colour/)
    expect(() => resolveConfig({ filters: { modules: { a: { package: 'no-such-package-xyz' } } } })).toThrow(/package "no-such-package-xyz" is not installed/)
    const ok = resolveConfig({ filters: { order: ['b', 'a'], modules: { a: { config: { x: 1 }, enabled: false } } } })
    expect(ok.filters).toEqual({ order: ['b', 'a'], modules: { a: { config: { x: 1 }, entry: null, enabled: false } } })
  })

  it('loads a filter from an npm package named in the config', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const base = mkdtempSync(`${tmpdir()}/resident-pkg-`)
    const pkgDir = `${base}/node_modules/resident-filter-demo`
    mkdirSync(pkgDir, { recursive: true })
    writeFileSync(`${pkgDir}/package.json`, JSON.stringify({ name: 'resident-filter-demo', main: 'index.js' }))
    writeFileSync(`${pkgDir}/index.js`, `const { Filter } = require('resident-host')
module.exports = class Pkg extends Filter { onSendResponse(req, res) { res.setHeader('x-from-package', this.host.config.v) } }`)
    expect(resolveConfig({ filters: { modules: { pkg: { package: 'resident-filter-demo' } } } }, { cwd: base }).filters.modules.pkg!.entry).toBe(`${pkgDir}/index.js`)
    try {
      t = await startTestServer({ extensions: { 'echo.ts': ECHO }, config: { filters: { modules: { pkg: { package: pkgDir, config: { v: 'yes' } } } } } })
      expect(t.server.filters.describe()[0]).toMatch(/^1\. pkg /)
      expect((await t.inject('/echo/hello')).headers['x-from-package']).toBe('yes')
    } finally { rmSync(base, { recursive: true, force: true }) }
  })
})
