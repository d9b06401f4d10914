// The measured scenario, through HTTP: three clients loop on three extensions (one holds buffers)
// while a fourth unloads, loads and reloads them in turn. Afterwards, with a forced GC, the buffers
// are back near their baseline and every generation ever created is accounted for.
import { afterEach, describe, expect, it } from 'vitest'
import { forceGc } from '../src/residency/collection.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

const SIZE_MB = 8
const EXTENSIONS = {
  'cache.ts': `import { Extension } from 'resident-host'
export default class Cache extends Extension {
  chunks = []
  init() {
    for (let i = 0; i < ${SIZE_MB}; i++) this.chunks.push(Buffer.alloc(1024 * 1024, i + 1))
    this.host.setInterval(() => { this.touched = Date.now() }, 50)
  }
  stats() { if (this.disposed) throw new Error('served by a disposed generation'); return { mb: this.chunks.length, g: this.host.generation } }
  dispose() { this.disposed = true; this.chunks = [] }
}`,
  'calc.ts': `import { Extension } from 'resident-host'
export default class Calc extends Extension { add({ a, b }) { return { sum: Number(a) + Number(b) } } }`,
  'counter.ts': `import { Extension } from 'resident-host'
export default class Counter extends Extension { n = 0; increment() { return { n: ++this.n } } }`,
}

interface ExtStatus { name: string; state: string; generations: { created: number; current: number; loading: number; draining: number; retired: number } }

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

const arrayBuffersAfterGc = () => { forceGc('collection'); forceGc('collection'); return process.memoryUsage().arrayBuffers }

describe('residency under churn, through HTTP', () => {
  it('gives the buffers back and accounts for every generation', async () => {
    t = await startTestServer({ extensions: EXTENSIONS, config: { drainTimeout: '5s', unload: { collectionGrace: '1h' } } })
    const base = await t.listen()
    for (const p of ['/cache/stats', '/calc/add?a=1&b=2', '/counter/increment']) expect((await fetch(base + p)).status).toBe(200)
    const baseline = arrayBuffersAfterGc()

    const until = Date.now() + 3000
    const statuses = new Map<number, number>()
    const client = async (p: string) => {
      while (Date.now() < until) {
        const r = await fetch(base + p)
        await r.arrayBuffer()
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      }
    }
    const admin = async () => {
      const actions = ['unload', 'load', 'reload']
      const names = ['calc', 'counter', 'cache']
      for (let i = 0; Date.now() < until; i++) {
        const r = await fetch(`${base}/_resident/extensions/${names[i % 3]}/${actions[Math.floor(i / 3) % 3]}`, { method: 'POST', headers: { 'x-resident-admin': '1' } })
        await r.arrayBuffer()
        expect(r.status).toBe(200)
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    await Promise.all([client('/cache/stats'), client('/calc/add?a=1&b=2'), client('/counter/increment'), admin()])
    expect([...statuses.keys()]).toEqual([200])

    // Every generation is accounted for, and none is left loading or draining.
    const list = async () => ((await t!.inject('/_resident/status')).json() as { extensions: ExtStatus[] }).extensions
    await waitFor(async () => (await list()).every((e) => e.generations.loading + e.generations.draining === 0), 'the drains to finish')
    for (const e of await list()) {
      const g = e.generations
      expect(g.created, e.name).toBe(g.current + g.loading + g.draining + g.retired)
      expect(g.created, `${e.name} was churned`).toBeGreaterThan(1)
    }
    // One cache generation may be resident, as at the baseline; the retired ones are gone.
    const after = arrayBuffersAfterGc()
    expect(after - baseline).toBeLessThan(SIZE_MB * 1024 * 1024 / 2)
  }, 30_000)
})
