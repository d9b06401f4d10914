// Admission: a load that would not fit under the memory limit waits for room (the request in flight
// on another extension ends, that extension is evicted) instead of loading over the budget and
// leaving eviction to catch up afterwards.
import { afterEach, describe, expect, it } from 'vitest'
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
  host: { evictions: { memory: number; admission: { waited: number; overBudget: number } } }
  extensions: Array<{ name: string; requests: { inFlight: number } }>
}

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

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

  it('a load that no eviction could make room for goes ahead at once', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': HOLDER(1) },
      // 1 MB: the process alone is far over it, whatever is evicted.
      config: { memory: { budget: '1MB', checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/hit')).body).toBe('ok')
    const s = await status()
    expect(s.host.evictions.admission.waited).toBe(0)
    expect(s.host.evictions.admission.overBudget).toBe(1)
    expect(s.host.evictions.memory).toBe(0)
  })
})
