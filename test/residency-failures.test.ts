// What status and leases do when things go wrong: 504s, 500s, shutdown with a hung command,
// rapid-fail on every path, and extensions nobody asked for yet.
import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { startWatchedServer, until } from './helpers/watch.ts'

interface ExtStatus {
  name: string; state: string; generation: number | null
  requests: { total: number; inFlight: number }
  errors: number; loadFailures: number
  lastError: { code: string; message: string; at: string; requestId: string | null } | null
  generations: { created: number; current: number; loading: number; draining: number; retired: number }
  abandoned: number
  draining: Array<{ generation: number; inFlight: number; abandoned: number }>
  failed: { trips: number } | null
  unloads: Record<string, number>
}
type G = Record<string, unknown>
const g = globalThis as G

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

async function ext(name: string): Promise<ExtStatus | undefined> {
  const r = await t!.inject('/_resident/status')
  return (r.json() as { extensions: ExtStatus[] }).extensions.find((e) => e.name === name)
}

const HANG = `import { Extension } from 'resident-host'
export default class Hang extends Extension {
  async forever(_p, req) {
    req.signal.addEventListener('abort', () => { globalThis.__hang.aborted++ })
    await new Promise((r) => { globalThis.__hang.finish.push(r) })
    return 'late'
  }
  quick() { return 'ok' }
  dispose(reason) { globalThis.__hang.disposed.push(reason) }
}`

describe('a 504 ends the lease', () => {
  it('releases the lease at once, reports the command abandoned, aborts its signal, and lets unload dispose', async () => {
    g.__hang = { aborted: 0, finish: [], disposed: [] }
    const h = g.__hang as { aborted: number; finish: Array<() => void>; disposed: string[] }
    t = await startTestServer({ extensions: { 'hang.ts': HANG }, config: { requestTimeout: '100ms', drainTimeout: '30s' } })
    const [a, b] = await Promise.all([t.inject('/hang/forever'), t.inject('/hang/forever')])
    expect([a.statusCode, b.statusCode]).toEqual([504, 504])
    expect(a.json().error.code).toBe('RES_ERR_TIMEOUT')
    expect(h.aborted).toBe(2)
    let s = (await ext('hang'))!
    expect(s.requests.inFlight).toBe(0)
    expect(s.abandoned).toBe(2)
    expect(s.errors).toBe(2)
    expect(s.lastError).toMatchObject({ code: 'RES_ERR_TIMEOUT' })
    expect([a.json().error.requestId, b.json().error.requestId]).toContain(s.lastError!.requestId)
    // The unload does not wait for them (drainTimeout is 30 s): dispose runs now.
    const started = performance.now()
    const r = await t.inject({ method: 'POST', url: '/_resident/extensions/hang/unload', headers: { 'x-resident-admin': '1' } })
    expect(r.json()).toEqual({ name: 'hang', unloaded: true })
    expect(performance.now() - started).toBeLessThan(10_000)
    expect(h.disposed).toEqual(['admin'])
    s = (await ext('hang'))!
    expect(s.requests.inFlight).toBe(0)
    expect(s.generations).toEqual({ created: 1, current: 0, loading: 0, draining: 0, retired: 1 })
    // The commands settling late change nothing.
    for (const f of h.finish) f()
    await new Promise((r) => setTimeout(r, 20))
    expect((await ext('hang'))!.requests.inFlight).toBe(0)
  })
})

describe('shutdown', () => {
  it('takes one drainTimeout in all, with a hung command', async () => {
    g.__hang = { aborted: 0, finish: [], disposed: [] }
    t = await startTestServer({ extensions: { 'hang.ts': HANG }, config: { requestTimeout: '1h', drainTimeout: '1s' } })
    const base = await t.listen()
    const hung = fetch(`${base}/hang/forever`).catch(() => null)
    await expect.poll(() => (g.__hang as { finish: unknown[] }).finish.length, { timeout: 5000 }).toBe(1)
    const started = performance.now()
    await t.close()
    const ms = performance.now() - started
    // Before, the server waited drainTimeout and then the registry waited it again.
    expect(ms).toBeGreaterThanOrEqual(950)
    expect(ms).toBeLessThan(1900) // twice would be 2000
    expect((g.__hang as { disposed: string[] }).disposed).toEqual(['shutdown'])
    await hung
  })
})

describe('status counts failures', () => {
  it('counts 500s per extension with the last error: code, message, time, request id', async () => {
    t = await startTestServer({
      extensions: { 'boom.ts': `import { Extension, HttpError } from 'resident-host'
export default class Boom extends Extension {
  fail() { throw new Error('kaput') }
  missing() { throw new HttpError(404, 'no such thing') }
  ok() { return 1 }
}` },
    })
    expect((await t.inject('/boom/ok')).statusCode).toBe(200)
    const r1 = await t.inject('/boom/fail')
    expect(r1.statusCode).toBe(500)
    expect((await t.inject('/boom/missing')).statusCode).toBe(404)
    const r2 = await t.inject('/boom/fail')
    const s = (await ext('boom'))!
    expect(s.errors).toBe(2)
    expect(s.lastError).toMatchObject({ code: 'RES_ERR_COMMAND_FAILED', message: 'kaput', requestId: r2.json().error.requestId })
    expect(Date.parse(s.lastError!.at)).toBeGreaterThan(Date.now() - 60_000)
    expect(r1.json().error.requestId).not.toBe(r2.json().error.requestId)
  })

  it('lists every extension on disk, unloaded until its first request', async () => {
    const src = `import { Extension } from 'resident-host'
export default class X extends Extension { ping() { return 'pong' } }`
    t = await startTestServer({ extensions: { 'one.ts': src, 'two.ts': src, 'three/index.ts': src, 'not a module.ts': src } })
    await t.inject('/one/ping')
    const r = await t.inject('/_resident/status')
    const list = (r.json() as { extensions: ExtStatus[] }).extensions
    expect(list.map((e) => e.name).sort()).toEqual(['one', 'three', 'two'])
    expect(list.find((e) => e.name === 'two')).toMatchObject({ state: 'unloaded', generation: null, generations: { created: 0 } })
    expect(list.find((e) => e.name === 'one')).toMatchObject({ state: 'resident', generation: 1 })
  })
})

describe('rapid-fail on every path', () => {
  const BROKEN = `import { Extension } from 'resident-host'
export default class B extends Extension { init() { throw new Error('broken on purpose') } ping() { return 'pong' } }`
  const FIXED = `import { Extension } from 'resident-host'
export default class B extends Extension { ping() { return 'pong' } }`

  it('a reload of an extension not loaded yet uses the configured settings', async () => {
    // maxFailures 1: the first failed load marks it failed. The defaults (3) would not.
    t = await startTestServer({ extensions: { 'b.ts': BROKEN }, config: { rapidFail: { maxFailures: 1, backoff: '1h', maxBackoff: '1h' } } })
    expect((await t.inject({ method: 'POST', url: '/_resident/extensions/b/reload', headers: { 'x-resident-admin': '1' } })).statusCode).toBe(500)
    const r = await t.inject('/b/ping')
    expect(r.statusCode).toBe(503)
    expect(r.json().error.code).toBe('RES_ERR_EXTENSION_FAILED')
  })

  it('an admin reload clears rapid-fail and loads at once', async () => {
    t = await startTestServer({ extensions: { 'b.ts': BROKEN }, config: { rapidFail: { maxFailures: 1, backoff: '1h', maxBackoff: '1h' } } })
    expect((await t.inject('/b/ping')).statusCode).toBe(500)
    expect((await t.inject('/b/ping')).statusCode).toBe(503)
    t.writeExtension('b.ts', FIXED)
    const r = await t.inject({ method: 'POST', url: '/_resident/extensions/b/reload', headers: { 'x-resident-admin': '1' } })
    expect(r.statusCode).toBe(200)
    expect((await t.inject('/b/ping')).body).toBe('pong')
    expect((await ext('b'))!).toMatchObject({ state: 'resident', failed: null })
  })
})

describe('a save clears rapid-fail', () => {
  it('in resident dev, saving the fix of an extension marked failed loads it at once', async () => {
    const w = await startWatchedServer({
      extensions: { 'b.ts': `import { Extension } from 'resident-host'
export default class B extends Extension { init() { throw new Error('broken on purpose') } ping() { return 'pong' } }` },
      config: { rapidFail: { maxFailures: 1, backoff: '1h', maxBackoff: '1h' } },
    })
    t = w
    await until(async () => (await t!.inject('/b/ping')).statusCode === 503, 'rapid-fail to mark it failed')
    w.writeExtension('b.ts', `import { Extension } from 'resident-host'
export default class B extends Extension { ping() { return 'pong' } }`)
    // The backoff is an hour: only the save can have brought it back.
    await until(async () => (await t!.inject('/b/ping')).statusCode === 200, 'the saved fix to load')
    expect((await t.inject('/b/ping')).body).toBe('pong')
    expect((await ext('b'))!).toMatchObject({ state: 'resident', failed: null })
  })
})
