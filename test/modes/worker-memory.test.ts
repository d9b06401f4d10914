// Worker mode only: exact memory per extension, eviction and reload terminate workers (and the
// memory comes back with them), and a streamed body far larger than a worker's limits passes
// through under backpressure.
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { waitFor } from '../helpers/poll.ts'

const HOLDER = `import { Extension } from 'resident-host'
import { threadId } from 'node:worker_threads'
export default class Holder extends Extension {
  chunks = []
  // Two 40 MB buffers: above glibc's largest mmap threshold, so each is its own mapping and its
  // pages leave the process when freed (smaller blocks may be kept by the allocator for reuse,
  // which would make RSS a test of glibc rather than of the worker's termination).
  init() { for (let i = 0; i < 2; i++) this.chunks.push(Buffer.alloc(40 * 1024 * 1024, i + 1)) }
  where() { return { threadId, generation: this.host.generation, mb: this.chunks.reduce((n, c) => n + c.length, 0) / 1024 ** 2 } }
  async slow() { await new Promise((r) => setTimeout(r, 400)); return { threadId, generation: this.host.generation } }
}`

// 64 KB chunks, each a fresh allocation: 256 MB in all, from a worker allowed 16 MB of heap and
// 48 MB of buffers. Only backpressure keeps it inside those limits.
const FIREHOSE = `import { Extension, param } from 'resident-host'
export default class Firehose extends Extension {
  static commands = { index: { params: { mb: param.integer({ default: 256 }) } } }
  async *index({ mb }) {
    for (let i = 0; i < mb * 16; i++) yield Buffer.alloc(64 * 1024, i % 251)
  }
}`

interface Ext { name: string; state: string; generation: number; memory: { heapUsed: number; external: number } | null; runtime: { workers: Array<{ threadId: number }>; crashes: number; memoryReplacements: number } | null }

const rssMb = () => process.memoryUsage.rss() / 1024 ** 2

describe('worker mode: memory', () => {
  let t: TestServer
  const ext = async (name: string) => ((await t.inject('/_resident/status')).json() as { extensions: Ext[] }).extensions.find((e) => e.name === name)
  beforeAll(async () => {
    t = await startTestServer({
      extensions: { 'holder.ts': HOLDER, 'firehose.ts': FIREHOSE },
      config: {
        mode: 'worker', requestTimeout: '60s',
        extensions: { firehose: { worker: { resourceLimits: { maxOldGenerationSizeMb: 16 }, maxExternal: '48MB' } } },
      },
    })
  })
  afterAll(() => t.close())

  it('status shows a worker extension’s exact heap and buffers; unloading terminates the worker and hands the memory back', async () => {
    const before = rssMb()
    expect((await t.inject('/holder/where')).json()).toMatchObject({ mb: 80 })
    await waitFor(async () => ((await ext('holder'))?.memory?.external ?? 0) >= 80 * 1024 ** 2, 'the worker’s 80 MB in status')
    const loaded = (await ext('holder'))!
    expect(loaded.memory!.heapUsed).toBeGreaterThan(0)
    const grown = rssMb()
    expect(grown - before).toBeGreaterThan(48)
    const r = await t.inject({ method: 'POST', url: '/_resident/extensions/holder/unload', headers: { 'x-resident-admin': '1' } })
    expect(r.json()).toMatchObject({ unloaded: true })
    await waitFor(() => rssMb() < grown - 40, `RSS back down from ${grown.toFixed(0)} MB (now ${rssMb().toFixed(0)} MB)`)
    expect((await ext('holder'))!.state).toBe('unloaded')
  })

  it('memory-pressure eviction counts the worker’s exact bytes and terminates it', async () => {
    await t.inject('/holder/where')
    await waitFor(async () => ((await ext('holder'))?.memory?.external ?? 0) >= 80 * 1024 ** 2, 'loaded again')
    const grown = rssMb()
    // A budget just under what the process holds now: the idle worker extension is what goes.
    t.server.config.memory.budget = Math.floor((grown - 20) * 1024 ** 2)
    await t.server.registry.evictor.check()
    await waitFor(async () => (await ext('holder'))!.state === 'unloaded', 'holder evicted')
    expect(t.logs.some((l) => /evicting holder \(memory pressure/.test(l.msg))).toBe(true)
    await waitFor(() => rssMb() < grown - 40, 'RSS down after eviction')
    t.server.config.memory.budget = null
  })

  it('hot reload starts a new worker beside the old one; a request in flight finishes on the old one, which is then terminated', async () => {
    const first = (await t.inject('/holder/where')).json() as { threadId: number; generation: number }
    const inFlight = t.inject('/holder/slow')
    await new Promise((r) => setTimeout(r, 50))
    const gen = await t.server.registry.reload('holder')
    expect(gen.id).toBe(first.generation + 1)
    const both = rssMb()
    const next = (await t.inject('/holder/where')).json() as { threadId: number; generation: number }
    expect(next.generation).toBe(first.generation + 1)
    expect(next.threadId).not.toBe(first.threadId)
    expect((await inFlight).json()).toEqual({ threadId: first.threadId, generation: first.generation })
    await waitFor(async () => (await ext('holder'))!.runtime!.workers.every((w) => w.threadId === next.threadId), 'only the new worker left')
    // Both generations held their 80 MB during the switch; the old one's came back with its thread.
    await waitFor(async () => ((await ext('holder'))?.memory?.external ?? 0) < 120 * 1024 ** 2, 'one generation’s buffers in status')
    await waitFor(() => rssMb() < both - 40, `RSS back to one generation's (was ${both.toFixed(0)} MB with both, now ${rssMb().toFixed(0)} MB)`)
  })

  it('a streamed body larger than the worker’s heap and buffer limits passes through, under backpressure', async () => {
    const base = await t.listen()
    const total = await new Promise<number>((resolve, reject) => {
      http.get(`${base}/firehose/?mb=256`, (res) => {
        let n = 0
        // A client slower than the worker: each chunk waits a little before the next is read.
        res.on('data', (c: Buffer) => { n += c.length; res.pause(); setImmediate(() => res.resume()) })
        res.on('end', () => resolve(n))
        res.on('error', reject)
      }).on('error', reject)
    })
    expect(total).toBe(256 * 1024 ** 2)
    const s = (await ext('firehose'))!
    expect(s.runtime).toMatchObject({ crashes: 0, memoryReplacements: 0 })
  })
})
