import { afterEach, describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import { planEviction } from '../src/residency/eviction.ts'
import { sampleMemory } from '../src/residency/memory.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

const CALC = `import { Extension } from 'resident-host'
export default class Calc extends Extension { add({ a, b }) { return { sum: Number(a) + Number(b) } } }`

describe('status JSON', () => {
  it('has the fixed shape and the host and extension figures', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { memory: { budget: '2GB' } } })
    for (let i = 0; i < 5; i++) await t.inject('/calc/add?a=1&b=2')
    await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/calc/unload' })
    await t.inject('/calc/add?a=1&b=2')
    const r = await t.inject('/_resident/status')
    expect(r.statusCode).toBe(200)
    const body = r.json()
    expect(body.host).toMatchObject({
      pid: process.pid,
      mode: 'inprocess',
      memory: {
        heapUsed: expect.any(Number), heapLimit: expect.any(Number), rss: expect.any(Number), peakRss: expect.any(Number),
        budget: 2 * 1024 ** 3, highWatermark: 0.85, lowWatermark: 0.7,
        pressure: { ratio: expect.any(Number), signal: expect.stringMatching(/^(heap|rss|cgroup)$/) },
      },
      idleTimeoutMs: 600_000,
      evictions: { idle: 0, memory: 0, total: 0 },
    })
    expect(body.host.memory.heapUsed).toBeLessThan(body.host.memory.heapLimit)
    const calc = body.extensions.find((e: { name: string }) => e.name === 'calc')
    expect(calc).toMatchObject({
      name: 'calc', state: 'resident', mode: 'inprocess', generation: 2,
      requests: { total: 6, inFlight: 0 },
      lastUsed: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      loadedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      errors: 0,
      latencyMs: { p50: expect.any(Number), p99: expect.any(Number), samples: 6 },
      loadMs: expect.any(Number),
      heapGrowth: { bytes: expect.any(Number), estimate: true },
      unloads: { admin: 1 },
      leaksSuspected: 0,
      failed: null,
      retired: [{ generation: 1, reason: 'admin', at: expect.any(String), collected: expect.toSatisfy((v: unknown) => v === null || typeof v === 'boolean') }],
    })
  })

  it('refuses a non-loopback caller without a token, and accepts one with the token', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    const far = await t.inject({ url: '/_resident/status', remoteAddress: '203.0.113.9' })
    expect(far.statusCode).toBe(403)
    expect(far.json().error).toMatchObject({ code: 'RES_ERR_ADMIN_FORBIDDEN', requestId: expect.any(String) })
    const unload = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/calc/unload', remoteAddress: '10.1.2.3' })
    expect(unload.statusCode).toBe(403)
    await t.close()
    const token = 'a-very-long-admin-token'
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { admin: { token } } })
    const ok = await t.inject({ url: '/_resident/status', remoteAddress: '203.0.113.9', headers: { authorization: `Bearer ${token}` } })
    expect(ok.statusCode).toBe(200)
    expect((await t.inject({ url: '/_resident/status', remoteAddress: '203.0.113.9' })).statusCode).toBe(403)
  })
})

describe('eviction plan', () => {
  const c = (name: string, lastActive: number, estimate: number) => ({ name, lastActive, estimate })
  it('takes least recently used first until the estimates cover what is needed', () => {
    const cands = [c('new', 300, 10), c('old', 100, 10), c('mid', 200, 10)]
    expect(planEviction(cands, 15)).toEqual(['old', 'mid'])
    expect(planEviction(cands, 10)).toEqual(['old'])
    expect(planEviction(cands, 0)).toEqual([])
    expect(planEviction(cands, 1000)).toEqual(['old', 'mid', 'new'])
    // Unknown estimates (0): keeps going, the caller re-measures after a GC.
    expect(planEviction([c('x', 1, 0), c('y', 2, 0)], 5)).toEqual(['x', 'y'])
  })
})

describe('residency config', () => {
  it('has documented defaults and validates every key', () => {
    const d = resolveConfig({}, { cwd: '/tmp' })
    expect(d.idleTimeout).toBe(600_000)
    expect(d.memory).toEqual({ budget: null, highWatermark: 0.85, lowWatermark: 0.7, checkInterval: 5000, minResidency: 1000 })
    expect(resolveConfig({ memory: { minResidency: '30s' } }, { cwd: '/tmp' }).memory.minResidency).toBe(30_000)
    expect(() => resolveConfig({ memory: { minResidency: 'soon' } }, { cwd: '/tmp' })).toThrow(/memory.minResidency/)
    expect(d.unload).toEqual({ maxDeclines: 3, collectionGrace: 10_000, esbuildIdle: 30_000 })
    expect(d.rapidFail).toEqual({ maxFailures: 3, window: 60_000, backoff: 5000, maxBackoff: 300_000 })
    const c = resolveConfig({ idleTimeout: '2m', memory: { budget: '512MB', highWatermark: 0.9, lowWatermark: 0.6 }, extensions: { calc: { idleTimeout: '30s' } } }, { cwd: '/tmp' })
    expect(c.memory.budget).toBe(512 * 1024 ** 2)
    expect(c.extensions.calc!.idleTimeout).toBe(30_000)
    expect(() => resolveConfig({ memory: { budget: 'lots', lowWatermark: 0.95, bogus: 1 }, idleTimeout: -1, unload: { maxDeclines: 1.5 }, rapidFail: { maxFailures: 0 } }, { cwd: '/tmp' }))
      .toThrow(/"idleTimeout"[\s\S]*memory.budget[\s\S]*unknown setting "memory.bogus"[\s\S]*lowWatermark" must be below[\s\S]*maxDeclines[\s\S]*maxFailures/)
    expect(() => resolveConfig({ extensions: { calc: { idleTimeout: 'soon' } } }, { cwd: '/tmp' })).toThrow(/extensions.calc.idleTimeout/)
  })
})

describe('memory signals', () => {
  it('reads heap, RSS against the budget, and reports the dominant signal', () => {
    const s = sampleMemory(1024 * 1024)
    expect(s.signal).toMatch(/rss|cgroup/)
    expect(s.ratio).toBeGreaterThan(1)
    expect(s.excessOver(0.5)).toBeGreaterThan(s.rss - 1024 * 1024)
    const n = sampleMemory(null)
    expect(n.heapUsed).toBeGreaterThan(0)
    expect(n.heapLimit).toBeGreaterThan(n.heapUsed)
    if (n.cgroup) expect(Number.isFinite(n.cgroup.limit)).toBe(true)
  })
})
