import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

type G = Record<string, unknown>
const g = globalThis as G

interface ExtStatus {
  name: string; state: string; generation: number | null; requests: { total: number; inFlight: number }
  unloads: Record<string, number>; declines: number; retired: Array<{ generation: number; reason: string; collected: boolean | null }>
  [k: string]: unknown
}

async function status(t: TestServer): Promise<{ host: Record<string, unknown>; extensions: ExtStatus[] }> {
  const r = await t.inject('/_resident/status')
  expect(r.statusCode).toBe(200)
  return r.json()
}
const ext = async (t: TestServer, name: string) => (await status(t)).extensions.find((e) => e.name === name)

const COUNTER = `import { Extension } from 'resident-host'
export default class Counter extends Extension {
  n = 0
  bump() { return { n: ++this.n, generation: this.host.generation } }
}`

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

describe('idle unload', () => {
  it('unloads after idleTimeout and loads fresh on the next request', async () => {
    t = await startTestServer({
      extensions: { 'counter.ts': COUNTER, 'keep.ts': COUNTER },
      config: { idleTimeout: '1s', memory: { checkInterval: '50ms' }, extensions: { keep: { idleTimeout: 0 } } },
    })
    expect((await t.inject('/counter/bump')).json()).toEqual({ n: 1, generation: 1 })
    expect((await t.inject('/counter/bump')).json()).toEqual({ n: 2, generation: 1 })
    await t.inject('/keep/bump')
    await waitFor(async () => (await ext(t!, 'counter'))?.state === 'unloaded', 'counter to be unloaded')
    const s = await ext(t, 'counter')
    expect(s!.unloads).toEqual({ idle: 1 })
    expect(s!.retired[0]).toMatchObject({ generation: 1, reason: 'idle' })
    // Transparent reload; the state starts fresh.
    expect((await t.inject('/counter/bump')).json()).toEqual({ n: 1, generation: 2 })
    // idleTimeout 0 for "keep": never unloaded.
    expect((await ext(t, 'keep'))!.state).toBe('resident')
    expect(t.logs.some((l) => l.msg === 'unloaded counter (generation 1, idle)')).toBe(true)
  })

  it('stops host timers on unload and passes the reason to dispose() and onDispose', async () => {
    g.__ticks = 0
    g.__events = []
    t = await startTestServer({
      extensions: {
        'ticker.ts': `import { Extension } from 'resident-host'
export default class Ticker extends Extension {
  init() {
    this.host.setInterval(() => { globalThis.__ticks++ }, 10)
    this.host.setTimeout(() => { globalThis.__events.push('timeout fired') }, 60_000)
    this.host.onDispose(() => { globalThis.__events.push('onDispose') })
  }
  dispose(reason) { globalThis.__events.push('dispose:' + reason) }
  ping() { return 'pong' }
}`,
      },
      config: { idleTimeout: '1s', memory: { checkInterval: '50ms' } },
    })
    expect((await t.inject('/ticker/ping')).body).toBe('pong')
    await waitFor(() => (g.__ticks as number) > 3, 'the interval to tick')
    await waitFor(async () => (await ext(t!, 'ticker'))?.state === 'unloaded', 'ticker to be unloaded')
    const after = g.__ticks as number
    await new Promise((r) => setTimeout(r, 150))
    expect(g.__ticks).toBe(after)
    expect(g.__events).toEqual(['dispose:idle', 'onDispose'])
  })

  it('lets canUnload() decline a bounded number of times, then forces the unload', async () => {
    g.__asked = 0
    t = await startTestServer({
      extensions: {
        'sticky.ts': `import { Extension } from 'resident-host'
export default class Sticky extends Extension {
  canUnload(reason) { globalThis.__asked++; return false }
  ping() { return 'pong' }
}`,
      },
      config: { idleTimeout: '100ms', memory: { checkInterval: '50ms' }, unload: { maxDeclines: 2 } },
    })
    await t.inject('/sticky/ping')
    await waitFor(async () => (await ext(t!, 'sticky'))?.state === 'unloaded', 'sticky to be unloaded')
    expect(g.__asked).toBe(3)
    const declines = t.logs.filter((l) => /sticky declined a idle unload/.test(l.msg))
    expect(declines).toHaveLength(2)
    expect(t.logs.some((l) => l.msg === 'sticky declined 2 idle unloads; unloading it anyway')).toBe(true)
  })
})

describe('draining', () => {
  it('never idle-unloads a generation with a request in flight', async () => {
    let release: (() => void) | undefined
    g.__gate2 = new Promise<void>((r) => { release = r })
    t = await startTestServer({
      extensions: { 'slow.ts': `import { Extension } from 'resident-host'
export default class Slow extends Extension { async wait() { await globalThis.__gate2; return 'done' } }` },
      config: { idleTimeout: '100ms', memory: { checkInterval: '20ms' } },
    })
    const slow = t.inject('/slow/wait')
    await waitFor(async () => (await ext(t!, 'slow'))?.requests.inFlight === 1, 'the request to be in flight')
    // Far past the idle timeout, measured from the request's start.
    await new Promise((r) => setTimeout(r, 400))
    expect((await ext(t, 'slow'))!.state).toBe('resident')
    release!()
    expect((await slow).body).toBe('done')
    await waitFor(async () => (await ext(t!, 'slow'))?.state === 'unloaded', 'the idle unload after the request')
  })

  it('disposes a generation whose requests outlive drainTimeout, and logs it', async () => {
    g.__events2 = []
    t = await startTestServer({
      extensions: { 'stuck.ts': `import { Extension } from 'resident-host'
export default class Stuck extends Extension {
  async wait() { await new Promise(() => {}) }
  dispose(reason) { globalThis.__events2.push(reason) }
}` },
      config: { drainTimeout: '200ms', requestTimeout: '1h' },
    })
    void t.inject('/stuck/wait')
    await waitFor(async () => (await ext(t!, 'stuck'))?.requests.inFlight === 1, 'the request to be in flight')
    const unload = t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/stuck/unload' })
    await waitFor(async () => (await ext(t!, 'stuck'))?.state === 'draining', 'the draining state')
    expect((await unload).json()).toEqual({ name: 'stuck', unloaded: true })
    expect(g.__events2).toEqual(['admin'])
    expect(t.logs.some((l) => /generation 1 of stuck did not drain within 200 ms; disposing it anyway/.test(l.msg))).toBe(true)
  })
})

describe('residency timers', () => {
  it('never keep the process alive (unref), while they run and after close()', async () => {
    // getActiveResourcesInfo() lists only timers that keep the event loop alive.
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = timers()
    const s = await startTestServer({
      extensions: { 'counter.ts': COUNTER },
      config: { idleTimeout: '1h', memory: { checkInterval: '50ms' }, unload: { collectionGrace: '1h' } },
    })
    expect(timers()).toBeLessThanOrEqual(before) // the check interval is running
    await s.inject('/counter/bump')
    expect(timers()).toBeLessThanOrEqual(before)
    await s.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/counter/unload' }) // a collection check is now pending
    await s.inject('/counter/bump')
    expect((await s.inject('/_resident/status')).json().host.collection.awaitingVerdict).toBe(1)
    expect(timers()).toBeLessThanOrEqual(before)
    await s.close()
    expect(timers()).toBeLessThanOrEqual(before)
  })
})

describe('memory pressure', () => {
  // The budget is lowered at run time so that pressure is certain (this process's RSS is far above 1 MB)
  // and the order is decided by use alone.
  it('evicts idle extensions least recently used first, never one with a request in flight', async () => {
    let release: (() => void) | undefined
    g.__gate = new Promise<void>((r) => { release = r })
    const files: Record<string, string> = { 'a.ts': COUNTER, 'b.ts': COUNTER, 'c.ts': COUNTER, 'd.ts': COUNTER }
    files['slow.ts'] = `import { Extension } from 'resident-host'
export default class Slow extends Extension {
  async wait() { await globalThis.__gate; return 'done' }
}`
    t = await startTestServer({ extensions: files, config: { memory: { checkInterval: '50ms', minResidency: 0 } } })
    for (const n of ['c', 'a', 'b']) await t.inject(`/${n}/bump`)
    const slow = t.inject('/slow/wait')
    await waitFor(async () => (await ext(t!, 'slow'))?.requests.inFlight === 1, 'the slow request to be in flight')
    await t.inject('/a/bump') // order of use, oldest first: c, b, slow (busy), a
    t.server.config.memory.budget = 1024 * 1024
    // The next check evicts (a load of d that does not fit makes room the same way).
    await t.inject('/d/bump')
    await waitFor(async () => (await ext(t!, 'a'))?.state === 'unloaded', 'a to be evicted')
    const order = t.logs.filter((l) => /^evicting /.test(l.msg)).map((l) => l.extension)
    expect(order.slice(0, 3)).toEqual(['c', 'b', 'a'])
    expect(order).not.toContain('slow')
    expect((await ext(t, 'slow'))!.state).toBe('resident')
    release!()
    expect((await slow).body).toBe('done')
    const host = (await status(t)).host as { evictions: { memory: number } }
    expect(host.evictions.memory).toBeGreaterThanOrEqual(3)
    expect((await ext(t, 'c'))!.unloads).toEqual({ memory: 1 })
  })
})

describe('constant memory pressure', () => {
  it('serves every request from a live generation, even when each load is evicted soon after', async () => {
    const live = `import { Extension } from 'resident-host'
export default class Live extends Extension {
  disposed = false
  async hit() { await new Promise((r) => setTimeout(r, Math.random() * 5)); if (this.disposed) throw new Error('used after dispose'); return 'ok' }
  dispose() { this.disposed = true }
}`
    const files: Record<string, string> = {}
    for (const n of ['e1', 'e2', 'e3', 'e4', 'e5']) files[`${n}.ts`] = live
    // A 1 MB budget: this process is always over it, so every load triggers evictions.
    t = await startTestServer({ extensions: files, config: { memory: { budget: '1MB', checkInterval: '20ms', minResidency: 0 } } })
    const failed: string[] = []
    for (let round = 0; round < 20; round++) {
      const wave = await Promise.all(Array.from({ length: 4 }, (_, i) => t!.inject(`/e${((round + i) % 5) + 1}/hit`)))
      for (const r of wave) if (r.statusCode !== 200) failed.push(r.body)
    }
    expect(failed).toEqual([])
    const host = (await status(t)).host as { evictions: { memory: number } }
    expect(host.evictions.memory).toBeGreaterThan(0)
  })
})

describe('rapid-fail protection', () => {
  it('answers 503 with Retry-After after repeated load failures, and recovers after the backoff', async () => {
    t = await startTestServer({
      extensions: { 'broken.ts': `import { Extension } from 'resident-host'
export default class Broken extends Extension { init() { throw new Error('no database') } ping() { return 'pong' } }` },
      config: { rapidFail: { maxFailures: 2, window: '1m', backoff: '500ms', maxBackoff: '2s' } },
    })
    expect((await t.inject('/broken/ping')).statusCode).toBe(500)
    expect((await t.inject('/broken/ping')).json().error.code).toBe('RES_ERR_LOAD_FAILED')
    const r = await t.inject('/broken/ping')
    expect(r.statusCode).toBe(503)
    expect(r.headers['retry-after']).toBe('1')
    expect(r.json().error).toMatchObject({ code: 'RES_ERR_EXTENSION_FAILED', requestId: expect.any(String) })
    const s = await ext(t, 'broken')
    expect(s!.state).toBe('failed')
    expect(s!.loadFailures).toBe(2) // the 503 did not rebuild it
    expect(s!.errors).toBe(3) // but it was a 5xx answered for this extension
    expect(s!.lastError).toMatchObject({ code: 'RES_ERR_EXTENSION_FAILED', requestId: r.json().error.requestId })
    // Still failing after the backoff: one retry, then a doubled backoff.
    const retry = await waitFor(async () => { const x = await t!.inject('/broken/ping'); return x.statusCode !== 503 && x }, 'the backoff to pass')
    expect(retry.statusCode).toBe(500)
    expect((await ext(t, 'broken'))!.failed).toMatchObject({ trips: 2 })
    expect((await t.inject('/broken/ping')).statusCode).toBe(503)
    // Fixed: the next attempt after the backoff succeeds and clears the failed state.
    t.writeExtension('broken.ts', `import { Extension } from 'resident-host'
export default class Broken extends Extension { ping() { return 'pong' } }`)
    const ok = await waitFor(async () => { const x = await t!.inject('/broken/ping'); return x.statusCode === 200 && x }, 'recovery')
    expect(ok.body).toBe('pong')
    expect((await ext(t, 'broken'))!).toMatchObject({ state: 'resident', failed: null })
  })

  it('does not count a failed reload while the old generation keeps serving', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': COUNTER }, config: { rapidFail: { maxFailures: 1 } } })
    expect((await t.inject('/calc/bump')).statusCode).toBe(200)
    t.writeExtension('calc.ts', 'export default class {')
    expect((await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/calc/reload' })).statusCode).toBe(500)
    expect((await t.inject('/calc/bump')).json()).toEqual({ n: 2, generation: 1 })
    expect((await ext(t, 'calc'))!).toMatchObject({ state: 'resident', failed: null })
  })

  it('an admin load retries at once', async () => {
    t = await startTestServer({
      extensions: { 'flaky.ts': `import { Extension } from 'resident-host'
export default class Flaky extends Extension { init() { throw new Error('nope') } ping() { return 'pong' } }` },
      config: { rapidFail: { maxFailures: 1, backoff: '1h', maxBackoff: '1h' } },
    })
    expect((await t.inject('/flaky/ping')).statusCode).toBe(500)
    expect((await t.inject('/flaky/ping')).headers['retry-after']).toBe('3600')
    t.writeExtension('flaky.ts', `import { Extension } from 'resident-host'
export default class Flaky extends Extension { ping() { return 'pong' } }`)
    expect((await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/flaky/load' })).json()).toMatchObject({ state: 'resident' })
    expect((await t.inject('/flaky/ping')).body).toBe('pong')
  })
})
