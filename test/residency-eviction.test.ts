// Memory eviction that helps or stops: over budget with nothing reclaimable, it backs off and says
// so once (log and status) instead of evicting every idle extension on every check.
import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

const SMALL = `import { Extension } from 'resident-host'
export default class S extends Extension { ping() { return 'pong' } }`
// Each load leaks 2 MB where no unload can free it (as the generations that escaped did): evicting
// it gives nothing back.
const LEAKY = `import { Extension } from 'resident-host'
export default class L extends Extension {
  init() { (globalThis.__leak ??= []).push(Buffer.alloc(2 * 1024 * 1024, 1)) }
  ping() { return 'pong' }
}`

interface Host { evictions: { memory: number; backoffs: number; state: string; overBudget: null | { signal: string; usage: number; limit: number; lastEvicted: number; retryAt: string } } }

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined; delete (globalThis as { __leak?: unknown }).__leak })

async function host(): Promise<Host> {
  return ((await t!.inject('/_resident/status')).json() as { host: Host }).host
}

describe('eviction that helps or stops', () => {
  it('over budget with nothing reclaimable: evicts once, backs off, says it once', async () => {
    // A 1 MB budget: the process itself is far over it, and no extension can change that.
    t = await startTestServer({
      extensions: { 'a.ts': LEAKY, 'b.ts': LEAKY, 'c.ts': LEAKY },
      config: { memory: { budget: '1MB', checkInterval: '20ms', minResidency: 0 }, idleTimeout: 0 },
    })
    for (const n of ['a', 'b', 'c']) expect((await t.inject(`/${n}/ping`)).body).toBe('pong')
    // Evicting the three frees nothing: a back-off.
    await waitFor(async () => (await host()).evictions.backoffs > 0, 'the back-off')
    const h = await host()
    expect(h.evictions.state).toBe('over budget, nothing reclaimable')
    expect(h.evictions.overBudget).toMatchObject({ signal: 'rss', limit: 1024 * 1024 })
    expect(h.evictions.overBudget!.usage).toBeGreaterThan(1024 * 1024)
    expect(h.evictions.backoffs).toBeGreaterThanOrEqual(1)
    // Traffic goes on for ~1.5 s with a check every 20 ms. Before, every check evicted every idle
    // extension and the next request loaded it again (hundreds of evictions); now each attempt that
    // did not help ends in a back-off that doubles (1 s, 2 s, …), so a few attempts at most.
    for (let i = 0; i < 50; i++) {
      for (const n of ['a', 'b', 'c']) expect((await t.inject(`/${n}/ping`)).statusCode).toBe(200)
      await new Promise((r) => setTimeout(r, 25))
    }
    const later = await host()
    expect(later.evictions.state).toBe('over budget, nothing reclaimable')
    expect(later.evictions.backoffs).toBeLessThanOrEqual(4)
    expect(later.evictions.memory).toBeLessThanOrEqual(3 * later.evictions.backoffs)
    const warned = t.logs.filter((l) => l.msg.startsWith('over budget, nothing reclaimable'))
    expect(warned.filter((l) => l.level === 40)).toHaveLength(1)
    expect(warned[0]!.msg).toMatch(/^over budget, nothing reclaimable: rss at \d+ MB of 1 MB \(\d+%\); .*$/)
    expect(t.logs.some((l) => /^over budget, nothing reclaimable: .*evicting \d extension\(s\) freed -?\d+ MB; not evicting again for 1 s$/.test(l.msg))).toBe(true)
  })

  it('never evicts an extension loaded less than memory.minResidency ago', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': SMALL },
      config: { memory: { budget: '1MB', checkInterval: '20ms', minResidency: '1h' }, idleTimeout: 0 },
    })
    expect((await t.inject('/a/ping')).body).toBe('pong')
    await waitFor(async () => (await host()).evictions.state === 'over budget, nothing reclaimable', 'the back-off')
    const h = await host()
    expect(h.evictions.memory).toBe(0)
    expect(h.evictions.overBudget!.lastEvicted).toBe(0)
    expect(t.logs.some((l) => /no idle extension resident long enough to evict/.test(l.msg))).toBe(true)
  })

  it('comes back under the watermark: the back-off ends, logged once', async () => {
    t = await startTestServer({
      extensions: { 'a.ts': SMALL },
      config: { memory: { budget: '1MB', checkInterval: '20ms', minResidency: 0 }, idleTimeout: 0 },
    })
    await t.inject('/a/ping')
    await waitFor(async () => (await host()).evictions.state !== 'ok', 'the back-off')
    // The operator raises the budget (config is applied in place, as the config watcher does).
    t.server.config.memory.budget = 1024 ** 4
    await waitFor(async () => (await host()).evictions.state === 'ok', 'the recovery')
    expect(t.logs.filter((l) => /memory back under the high watermark/.test(l.msg))).toHaveLength(1)
  })
})
