import { afterEach, describe, expect, it } from 'vitest'
import { parsePrometheusText, sampleValue } from './helpers/prom-text.ts'
import { waitFor } from './helpers/poll.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

const CALC = `import { Extension, HttpError } from 'resident-host'
export default class Calc extends Extension {
  add({ a, b }) { return { sum: Number(a) + Number(b) } }
  fail() { throw new Error('boom') }
  teapot() { throw new HttpError(418, 'short and stout') }
  async later() { await new Promise((r) => setTimeout(r, 30)); return 'ok' }
}`

const scrape = async () => {
  const r = await t!.inject('/_resident/metrics')
  expect(r.statusCode).toBe(200)
  expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
  return parsePrometheusText(r.body)
}

describe('/_resident/metrics', () => {
  it('counts known traffic by extension, mode and status class, with a valid histogram', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    for (let i = 0; i < 7; i++) expect((await t.inject('/calc/add?a=1&b=2')).statusCode).toBe(200)
    for (let i = 0; i < 3; i++) expect((await t.inject('/calc/fail')).statusCode).toBe(500)
    for (let i = 0; i < 2; i++) expect((await t.inject('/calc/teapot')).statusCode).toBe(418)
    expect((await t.inject('/calc/nope')).statusCode).toBe(404)
    expect((await t.inject('/calc/later')).statusCode).toBe(200)
    const m = await scrape()
    const l = { extension: 'calc', mode: 'inprocess' }
    expect(m.get('resident_requests_total')!.type).toBe('counter')
    expect(sampleValue(m, 'resident_requests_total', { ...l, status_class: '2xx' })).toBe(8)
    expect(sampleValue(m, 'resident_requests_total', { ...l, status_class: '5xx' })).toBe(3)
    expect(sampleValue(m, 'resident_requests_total', { ...l, status_class: '4xx' })).toBe(3)
    expect(sampleValue(m, 'resident_request_duration_seconds_count', l)).toBe(14)
    // The async command waited 30 ms: it is past the 25 ms bound and within the 50 ms one… or later, on a busy machine.
    expect(sampleValue(m, 'resident_request_duration_seconds_bucket', { ...l, le: '0.025' })).toBeLessThanOrEqual(13)
    expect(sampleValue(m, 'resident_requests_in_flight', l)).toBe(0)
    expect(sampleValue(m, 'resident_extension_generation', l)).toBe(1)
    expect(sampleValue(m, 'resident_extension_loads_total', l)).toBe(1)
    expect(sampleValue(m, 'resident_extension_load_duration_seconds_count', l)).toBe(1)
    expect(sampleValue(m, 'resident_ready')).toBe(0) // inject: the server is not listening
    // Default process metrics from prom-client.
    expect(sampleValue(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(m.has('nodejs_heap_size_used_bytes')).toBe(true)
  })

  it('counts loads, unloads by reason, and load errors', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC, 'broken.ts': 'export default 42' } })
    await t.inject('/calc/add?a=1&b=1')
    await t.inject({ method: 'POST', url: '/_resident/extensions/calc/reload', headers: { 'x-resident-admin': '1' } })
    await t.inject({ method: 'POST', url: '/_resident/extensions/calc/unload', headers: { 'x-resident-admin': '1' } })
    await t.inject('/calc/add?a=1&b=1')
    expect((await t.inject('/broken/x')).statusCode).toBe(500)
    const m = await scrape()
    const l = { extension: 'calc', mode: 'inprocess' }
    expect(sampleValue(m, 'resident_extension_loads_total', l)).toBe(3)
    expect(sampleValue(m, 'resident_extension_generation', l)).toBe(3)
    expect(sampleValue(m, 'resident_extension_unloads_total', { ...l, reason: 'reload' })).toBe(1)
    expect(sampleValue(m, 'resident_extension_unloads_total', { ...l, reason: 'admin' })).toBe(1)
    expect(sampleValue(m, 'resident_extension_errors_total', { extension: 'broken' })).toBe(1)
    expect(sampleValue(m, 'resident_evictions_total', { reason: 'idle' })).toBe(0)
    expect(sampleValue(m, 'resident_memory_pressure_ratio')).toBeGreaterThan(0)
  })

  it('gives each extension its collection verdicts', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { unload: { collectionGrace: '50ms' } } })
    await t.inject('/calc/add?a=1&b=1')
    await t.inject({ method: 'POST', url: '/_resident/extensions/calc/reload', headers: { 'x-resident-admin': '1' } })
    await t.inject({ method: 'POST', url: '/_resident/extensions/calc/unload', headers: { 'x-resident-admin': '1' } })
    const l = { extension: 'calc', mode: 'inprocess' }
    let m = await scrape()
    // Two generations retired: each is awaiting its verdict, or has one.
    const verdicts = (m: Awaited<ReturnType<typeof scrape>>) => ['collected', 'retained', 'awaiting'].map((verdict) => sampleValue(m, 'resident_extension_collection_verdicts', { ...l, verdict }) ?? 0)
    expect(verdicts(m).reduce((a, b) => a + b)).toBe(2)
    await waitFor(async () => { m = await scrape(); return verdicts(m)[2] === 0 }, 'both verdicts', 20_000)
    expect(verdicts(m)[0] + verdicts(m)[1]).toBe(2)
    // The host's totals agree.
    expect(sampleValue(m, 'resident_collection_verdicts', { verdict: 'collected' })).toBe(verdicts(m)[0])
  }, 30_000)

  it('is on the protected admin surface', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    expect((await t.inject({ url: '/_resident/metrics', remoteAddress: '203.0.113.9' })).statusCode).toBe(403)
  })
})

describe('/_resident/health and /_resident/ready', () => {
  it('answer a non-loopback caller without a token, and reveal nothing else', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { admin: { token: 'a-long-enough-admin-token' } } })
    const url = await t.listen()
    const health = await fetch(`${url}/_resident/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${url}/_resident/ready`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ ready: true })
    expect(ready.headers.get('cache-control')).toBe('no-store')
    // Not listening through inject is the same server: a caller from elsewhere gets the same answer.
    const far = await t.inject({ url: '/_resident/health', remoteAddress: '203.0.113.9' })
    expect(far.statusCode).toBe(200)
    expect(far.body).toBe('{"status":"ok"}')
    expect((await t.inject({ url: '/_resident/status', remoteAddress: '203.0.113.9' })).statusCode).toBe(403)
  })

  it('ready is false while starting (not listening) and during the drain', async () => {
    t = await startTestServer({ extensions: { 'slow.ts': `import { Extension } from 'resident-host'
export default class Slow extends Extension { async wait() { await new Promise((r) => setTimeout(r, 400)); return 'done' } }` } })
    expect((await t.inject('/_resident/ready')).statusCode).toBe(503)
    const url = await t.listen()
    expect((await fetch(`${url}/_resident/ready`)).status).toBe(200)
    const slow = fetch(`${url}/slow/wait`).then((r) => r.text())
    await new Promise((r) => setTimeout(r, 100))
    const closing = t.server.close()
    expect(t.server.lifecycle).toBe('draining')
    const during = await t.inject('/_resident/ready')
    expect(during.statusCode).toBe(503)
    expect(during.json()).toEqual({ ready: false })
    expect(await slow).toBe('done')
    await closing
  })
})

describe('readiness under memory pressure', () => {
  it('is false over the budget with nothing reclaimable, true once an idle extension could be evicted', async () => {
    // A 1 MB budget: RSS is far above it. The idle timer and the memory check are kept from acting.
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { memory: { budget: '1MB', checkInterval: '1h' }, idleTimeout: 0 } })
    await t.listen()
    expect((await t.inject('/_resident/ready')).statusCode).toBe(503)
    // Resident and idle: its eviction would reclaim something, so the server still takes traffic.
    t.server.registry.evictor.stop()
    await t.server.registry.acquire('calc').then((g) => t!.server.registry.release(g!))
    expect((await t.inject('/_resident/ready')).statusCode).toBe(200)
  })
})

describe('slow log', () => {
  it('logs a request past slowLog.threshold with extension, command, duration and request id: at the threshold and when it ends', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { slowLog: { threshold: '10ms' } } })
    await t.inject({ url: '/calc/add?a=1&b=2' })
    const r = await t.inject({ url: '/calc/later', headers: { 'x-request-id': 'slow-one' } })
    expect(r.statusCode).toBe(200)
    const slow = t.logs.filter((l) => l.slow)
    const running = slow.filter((l) => (l.slow as { running?: boolean }).running)
    const ended = slow.filter((l) => !(l.slow as { running?: boolean }).running)
    expect(running).toHaveLength(1)
    expect(running[0]!.slow).toMatchObject({ extension: 'calc', command: 'later', generation: 1, requestId: expect.any(String) })
    expect((running[0]!.slow as { runningMs: number }).runningMs).toBeGreaterThanOrEqual(10)
    expect(ended).toHaveLength(1)
    expect(ended[0]!.level).toBe(40)
    expect(ended[0]!.slow).toMatchObject({ extension: 'calc', command: 'later', generation: 1, status: 200, requestId: (running[0]!.slow as { requestId: string }).requestId })
    expect((ended[0]!.slow as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(10)
  })
})

describe('metrics and modes', () => {
  it('label each extension with the mode it runs in, not the server default', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC, 'other.ts': CALC }, config: { extensions: { calc: { mode: 'worker' } } } })
    expect((await t.inject('/calc/add?a=1&b=2')).statusCode).toBe(200)
    expect((await t.inject('/other/add?a=1&b=2')).statusCode).toBe(200)
    const m = await scrape()
    expect(sampleValue(m, 'resident_requests_total', { extension: 'calc', mode: 'worker', status_class: '2xx' })).toBe(1)
    expect(sampleValue(m, 'resident_requests_total', { extension: 'other', mode: 'inprocess', status_class: '2xx' })).toBe(1)
    expect(sampleValue(m, 'resident_extension_loads_total', { extension: 'calc', mode: 'worker' })).toBe(1)
    expect(sampleValue(m, 'resident_request_duration_seconds_count', { extension: 'calc', mode: 'worker' })).toBe(1)
  })
})

describe('slow log in worker mode', () => {
  const BUSY = `import { Extension } from 'resident-host'
function spinFor(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
export default class Busy extends Extension {
  crunch() { spinFor(1500); return 'crunched' }
  async wait() { await new Promise((r) => setTimeout(r, 1500)); return 'waited' }
}`
  it("writes the worker's stack at the threshold: the command's own frames, mapped to its source", async () => {
    t = await startTestServer({ extensions: { 'busy.ts': BUSY }, config: { mode: 'worker', slowLog: { threshold: '300ms' } } })
    const r = await t.inject({ url: '/busy/crunch', headers: { 'x-request-id': 'slow-worker' } })
    expect(r.statusCode).toBe(200)
    const running = t.logs.filter((l) => (l.slow as { running?: boolean } | undefined)?.running)
    expect(running).toHaveLength(1)
    const slow = running[0]!.slow as { stack: string; command: string; requestId: string }
    expect(slow).toMatchObject({ extension: 'busy', command: 'crunch', requestId: r.headers['x-request-id'] ?? expect.any(String) })
    expect(slow.stack).toMatch(/at spinFor \(.*busy\.ts:2:\d+\)/)
    expect(slow.stack).toMatch(/at crunch \(.*busy\.ts:4:\d+\)/)
  }, 30_000)

  it('says so when the worker runs no JavaScript at the threshold (the command awaits)', async () => {
    t = await startTestServer({ extensions: { 'busy.ts': BUSY }, config: { mode: 'worker', slowLog: { threshold: '300ms' } } })
    expect((await t.inject('/busy/wait')).statusCode).toBe(200)
    const running = t.logs.filter((l) => (l.slow as { running?: boolean } | undefined)?.running)
    expect(running).toHaveLength(1)
    expect((running[0]!.slow as { stack: string }).stack).toMatch(/no JavaScript running/)
  }, 30_000)
})
