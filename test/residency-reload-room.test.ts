// A reload normally loads the new generation beside the old one. When the memory limit has no room
// for both, the old one leaves first: its state is exported, its requests finish, new requests wait
// for the new generation (none fails), and status counts it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { forceGc } from '../src/residency/collection.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

const HOLDER = (mb: number, extra = '') => `import { Extension } from 'resident-host'
export default class H extends Extension {
  chunks = []
  count = 0
  init() { for (let i = 0; i < ${mb}; i++) this.chunks.push(Buffer.alloc(1024 * 1024, 1)) ${extra} }
  async slow() { await new Promise((r) => setTimeout(r, 300)); return { g: this.host.generation } }
  hit() { this.count++; return { g: this.host.generation, count: this.count } }
  exportState() { return { count: this.count } }
  importState(s) { this.count = s.count }
  dispose() { this.chunks = [] }
}`

interface Ext { name: string; state: string; generation: number | null; reloadsWithoutOverlap: number; generations: Record<string, number> }

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })
beforeEach(() => { forceGc('collection'); forceGc('collection') })

const ext = async (name: string) => ((await t!.inject('/_resident/status')).json() as { extensions: Ext[] }).extensions.find((e) => e.name === name)!
const reload = (name: string) => t!.inject({ method: 'POST', url: `/_resident/extensions/${name}/reload`, headers: { 'x-resident-admin': '1' } })

describe('reload under the memory limit', () => {
  it('with no room for two generations, the old one leaves first; requests wait, none fails, state carries over', async () => {
    t = await startTestServer({ extensions: { 'a.ts': HOLDER(32) }, config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 } })
    for (let i = 0; i < 3; i++) expect((await t.inject('/a/hit')).json()).toMatchObject({ g: 1, count: i + 1 })
    // Room for a, not for a second a beside it.
    t.server.config.memory.budget = process.memoryUsage.rss() + 16 * 1024 ** 2

    const slow = t.inject('/a/slow')
    await waitFor(async () => (await ext('a')).generations.current === 1, 'a in flight')
    const reloading = reload('a')
    await waitFor(() => t!.logs.some((l) => /^reloading a without overlap/.test(l.msg)), 'the reload to start without overlap')
    // Arrives while generation 1 drains: waits for generation 2 rather than failing.
    const during = t.inject('/a/hit')
    expect((await slow).json()).toEqual({ g: 1 })
    expect((await reloading).statusCode).toBe(200)
    expect((await during).json()).toEqual({ g: 2, count: 4 })

    const a = await ext('a')
    expect(a).toMatchObject({ state: 'resident', generation: 2, reloadsWithoutOverlap: 1 })
    expect(a.generations).toMatchObject({ created: 2, current: 1, loading: 0, draining: 0, retired: 1 })
    // Generation 1 was disposed before generation 2 was built.
    const disposed = t.logs.findIndex((l) => /^unloaded a \(generation 1, reload\)/.test(l.msg))
    const loaded = t.logs.findIndex((l) => /^loaded a \(generation 2\)/.test(l.msg))
    expect(disposed).toBeGreaterThanOrEqual(0)
    expect(loaded).toBeGreaterThan(disposed)
  })

  it('with room, a reload overlaps as usual', async () => {
    t = await startTestServer({ extensions: { 'a.ts': HOLDER(8) }, config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 } })
    expect((await t.inject('/a/hit')).statusCode).toBe(200)
    t.server.config.memory.budget = process.memoryUsage.rss() + 512 * 1024 ** 2
    expect((await reload('a')).statusCode).toBe(200)
    expect(await ext('a')).toMatchObject({ generation: 2, reloadsWithoutOverlap: 0 })
    const loaded = t.logs.findIndex((l) => /^loaded a \(generation 2\)/.test(l.msg))
    const disposed = t.logs.findIndex((l) => /^unloaded a \(generation 1, reload\)/.test(l.msg))
    expect(disposed).toBeGreaterThan(loaded)
  })

  it('a new generation that fails to load leaves the extension unloaded, and the next good version loads', async () => {
    t = await startTestServer({ extensions: { 'a.ts': HOLDER(32) }, config: { memory: { checkInterval: '1h', minResidency: 0 }, idleTimeout: 0 } })
    expect((await t.inject('/a/hit')).statusCode).toBe(200)
    t.server.config.memory.budget = process.memoryUsage.rss() + 16 * 1024 ** 2
    t.writeExtension('a.ts', HOLDER(32, "; throw new Error('broken init')"))
    const r = await reload('a')
    expect(r.statusCode).toBe(500)
    expect(r.json()).toMatchObject({ error: { code: 'RES_ERR_LOAD_FAILED' } })
    expect(await ext('a')).toMatchObject({ state: 'unloaded', reloadsWithoutOverlap: 1 })
    t.writeExtension('a.ts', HOLDER(32))
    expect((await t.inject('/a/hit')).json()).toMatchObject({ g: 3, count: 1 })
  })
})
