// Admission: a load that would not fit under the memory limit waits for room (the request in flight
// on another extension ends, that extension is evicted) instead of loading over the budget and
// leaving eviction to catch up afterwards.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { forceGc } from '../src/residency/collection.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

const HOLDER = (mb: number) => `import { Extension } from 'resident-host'
export default class H extends Extension {
  chunks = []
  init() { for (let i = 0; i < ${mb}; i++) this.chunks.push(Buffer.alloc(1024 * 1024, 1)) }
  async slow() { await new Promise((r) => setTimeout(r, 300)); return 'done' }
  hit() { return 'ok' }
  dispose() { this.chunks = [] }
}`

interface Status {
  host: { forcedGc: { forAdmission: number }; evictions: { memory: number; admission: { waited: number; overBudget: number } } }
  extensions: Array<{ name: string; requests: { inFlight: number } }>
}

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })
// What an earlier test left would be collected during a load here, shrinking its measured growth.
beforeEach(() => { forceGc('collection'); forceGc('collection') })

const status = async () => (await t!.inject('/_resident/status')).json() as Status
const indexOf = (re: RegExp) => t!.logs.findIndex((l) => re.test(l.msg))

describe('load admission', () => {
  it('a load that does not fit waits for the busy extension to end its request and be evicted', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(32), 'c.ts': HOLDER(32) },
      // No timer checks: only loads look at memory here.
      config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    // Room for half of what c is expected to add (a's measured growth, 32 MB).
    t.server.config.memory.budget = process.memoryUsage.rss() + 16 * 1024 ** 2

    const slow = t.inject('/a/slow')
    await waitFor(async () => (await status()).extensions.find((e) => e.name === 'a')?.requests.inFlight === 1, 'a in flight')
    const c = await t.inject('/c/hit')
    expect(c.statusCode).toBe(200)
    expect((await slow).body).toBe('done')

    // a was evicted (once its request ended) before c loaded, not after.
    const evictedA = indexOf(/^evicting a /)
    const loadedC = indexOf(/^loaded c \(generation 1\)/)
    expect(evictedA).toBeGreaterThanOrEqual(0)
    expect(loadedC).toBeGreaterThan(evictedA)
    const s = await status()
    expect(s.host.evictions.memory).toBeGreaterThanOrEqual(1)
    expect(s.host.evictions.admission.waited).toBeGreaterThanOrEqual(1)
  })

  it('a load waiting for room evicts an idle extension younger than minResidency (the budget comes first)', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(32), 'c.ts': HOLDER(32) },
      config: { memory: { checkInterval: '1h', minResidency: '1h' }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    await t.server.registry.evictor.settled()
    t.server.config.memory.budget = process.memoryUsage.rss() + 16 * 1024 ** 2
    expect((await t.inject('/c/hit')).body).toBe('ok')
    const evictedA = indexOf(/^evicting a \(memory pressure: room to load c/)
    const loadedC = indexOf(/^loaded c \(generation 1\)/)
    expect(evictedA).toBeGreaterThanOrEqual(0)
    expect(loadedC).toBeGreaterThan(evictedA)
    const s = await status()
    expect(s.host.evictions.admission).toEqual({ waited: 1, overBudget: 0 })
    expect(s.extensions.find((e) => e.name === 'a')?.requests.inFlight).toBe(0)
  })

  it('already over the limit: a load still waits while evicting idle extensions would make room', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(32), 'b.ts': HOLDER(32), 'c.ts': HOLDER(32) },
      config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    expect((await t.inject('/b/hit')).body).toBe('ok')
    // The check b's load asked for runs under the old budget: only c's admission sees the new one.
    await t.server.registry.evictor.settled()
    // Over the limit by 24 MB: evicting a and b (64 MB) makes room for c (32 MB).
    t.server.config.memory.budget = process.memoryUsage.rss() - 24 * 1024 ** 2
    expect((await t.inject('/c/hit')).body).toBe('ok')
    const s = await status()
    // (Whether it then fits under the limit depends on the allocator giving the freed pages back,
    // which it need not do: the pages it keeps are reused by c's buffers.)
    expect(s.host.evictions.admission.waited).toBe(1)
    expect(s.host.evictions.memory).toBeGreaterThanOrEqual(1)
    expect(indexOf(/^loaded c \(generation 1\)/)).toBeGreaterThan(indexOf(/^evicting [ab] /))
  })

  it('a load that fits only once a retired generation is collected waits for one GC, not for more room', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(64) },
      config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    await t.server.registry.evictor.settled()
    // Room for one a, not two: under the high watermark (0.85) once the unloaded generation's 64 MB
    // are counted as freed, past the limit itself until they are collected.
    const rss = process.memoryUsage.rss()
    t.server.config.memory.budget = Math.round((rss / 0.85 + rss + 64 * 1024 ** 2) / 2)
    const gcs = (await status()).host.forcedGc.forAdmission
    const admin = { method: 'POST' as const, headers: { 'x-resident-admin': '1' } }
    expect((await t.inject({ ...admin, url: '/_resident/extensions/a/unload' })).statusCode).toBe(200)
    await waitFor(async () => (await status()).extensions.find((e) => e.name === 'a')?.requests.inFlight === 0, 'a disposed')
    expect((await t.inject('/a/hit')).body).toBe('ok')
    const s = await status()
    expect(s.host.forcedGc.forAdmission).toBe(gcs + 1)
    expect(s.host.evictions.admission).toEqual({ waited: 1, overBudget: 0 })
    expect(s.host.evictions.memory).toBe(0)
  })

  it('a load that no eviction could make room for goes ahead at once', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(1) },
      // 1 MB: the process alone is far over it, whatever is evicted. (minResidency keeps the check
      // that follows the load from evicting a once its request ended.)
      config: { memory: { budget: '1MB', checkInterval: '1h', minResidency: '1h' }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    const s = await status()
    expect(s.host.evictions.admission.waited).toBe(0)
    expect(s.host.evictions.admission.overBudget).toBe(1)
    expect(s.host.evictions.memory).toBe(0)
  })
})
