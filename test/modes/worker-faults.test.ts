// Worker mode only: what isolation buys. A hang is a 504 and a fresh worker; a crash is a 502 for
// that worker's requests only; a worker at its heap limit is replaced; other extensions never notice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { waitFor } from '../helpers/poll.ts'

const FRAGILE = `import { Extension } from 'resident-host'
import { threadId } from 'node:worker_threads'
export default class Fragile extends Extension {
  #count = 0
  count() { return { count: ++this.#count, threadId } }
  spin() { for (;;) {} }
  exit() { process.exit(3) }
  throwLater() { setTimeout(() => { throw new Error('thrown outside any request') }, 0); return new Promise(() => {}) }
  async slow() { await new Promise((r) => setTimeout(r, 300)); return { slow: true, threadId } }
  grow() { const keep = []; for (;;) keep.push({ a: Math.random(), b: 'x'.repeat(64), c: [1, 2, 3] }) }
}`

const STEADY = `import { Extension } from 'resident-host'
export default class Steady extends Extension {
  async wait() { await new Promise((r) => setTimeout(r, 200)); return { ok: true } }
}`

interface ExtStatus { name: string; mode: string; runtime: { crashes: number; hangs: number; started: number; lastExit: { kind: string; message: string } | null; workers: Array<{ threadId: number }> } | null }

describe('worker mode: faults stay inside their worker', () => {
  let t: TestServer
  const status = async (name: string) => ((await t.inject('/_resident/status')).json() as { extensions: ExtStatus[] }).extensions.find((e) => e.name === name)!

  beforeAll(async () => {
    t = await startTestServer({
      extensions: { 'fragile.ts': FRAGILE, 'steady.ts': STEADY, 'local.ts': STEADY },
      config: {
        mode: 'worker',
        // Long enough for the heap limit to come before the deadline on a loaded machine.
        requestTimeout: '3s',
        // Crashes in a row are what this test makes on purpose: no backoff between them.
        rapidFail: { maxFailures: 50 },
        worker: { hangGrace: '100ms', resourceLimits: { maxOldGenerationSizeMb: 32 } },
        extensions: { local: { mode: 'inprocess' } },
      },
    })
  })
  afterAll(() => t.close())

  it('an infinite loop is answered 504, and the next request is served by a fresh worker', async () => {
    const before = (await t.inject('/fragile/count')).json() as { threadId: number }
    const hung = await t.inject('/fragile/spin')
    expect(hung.statusCode).toBe(504)
    expect(hung.json().error.code).toBe('RES_ERR_TIMEOUT')
    // At once, while the old worker may still spin: the request must not queue behind it.
    const next = await t.inject('/fragile/count')
    expect(next.statusCode, next.body).toBe(200)
    const after = next.json() as { count: number; threadId: number }
    expect(after.threadId).not.toBe(before.threadId)
    expect(after.count).toBe(1) // a fresh worker: its own, new state
    expect((await status('fragile')).runtime).toMatchObject({ hangs: 1, lastExit: { kind: 'hung' } })
  })

  it('process.exit() is a 502 for that worker’s requests only; other extensions are served meanwhile', async () => {
    await t.inject('/fragile/count')
    const [crashed, neighbour, sibling, local] = await Promise.all([
      t.inject('/fragile/exit'),
      t.inject('/steady/wait'),
      // Already on the same worker when it dies: answered 502 too, not left hanging.
      new Promise<Awaited<ReturnType<TestServer['inject']>>>((resolve) => setTimeout(() => resolve(t.inject('/fragile/slow')), 0)),
      t.inject('/local/wait'),
    ])
    expect(crashed.statusCode).toBe(502)
    expect(crashed.json().error).toMatchObject({ code: 'RES_ERR_WORKER_CRASHED', requestId: expect.any(String) })
    expect(neighbour.json()).toEqual({ ok: true })
    expect(local.json()).toEqual({ ok: true })
    expect([200, 502]).toContain(sibling.statusCode)
    await waitFor(async () => (await t.inject('/fragile/count')).statusCode === 200, 'a replacement worker')
    const s = await status('fragile')
    expect(s.runtime!.lastExit).toMatchObject({ kind: 'crash', message: 'it exited with code 3' })
  })

  it('an uncaught exception outside any request takes down only its worker', async () => {
    const r = await t.inject('/fragile/throwLater')
    expect(r.statusCode).toBe(502)
    expect(r.json().error.message).not.toMatch(/thrown outside/) // the extension's message is for the log
    expect(t.logs.some((l) => /crashed \(uncaught Error: thrown outside any request\)/.test(l.msg))).toBe(true)
    expect((await t.inject('/fragile/count')).statusCode).toBe(200)
    expect((await t.inject('/steady/wait')).json()).toEqual({ ok: true })
  })

  it('a worker that reaches its heap limit is replaced, and the host keeps serving', async () => {
    const r = await t.inject('/fragile/grow')
    expect(r.statusCode).toBe(502)
    await waitFor(async () => (await status('fragile')).runtime?.lastExit?.message === 'it reached its heap limit', 'the out-of-memory exit recorded')
    expect((await t.inject('/fragile/count')).json()).toMatchObject({ count: 1 })
    expect((await t.inject('/local/wait')).json()).toEqual({ ok: true })
  })
})

describe('worker mode: repeated crashes back off', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      extensions: { 'fragile.ts': FRAGILE },
      config: { mode: 'worker', rapidFail: { maxFailures: 2, window: '1m', backoff: '5s', maxBackoff: '1m' } },
    })
  })
  afterAll(() => t.close())

  it('after rapidFail.maxFailures crashes, requests get 503 with Retry-After until the next start', async () => {
    expect((await t.inject('/fragile/exit')).statusCode).toBe(502)
    await waitFor(async () => (await t.inject('/fragile/count')).statusCode === 200, 'the first replacement')
    expect((await t.inject('/fragile/exit')).statusCode).toBe(502)
    const held = await t.inject('/fragile/count')
    expect(held.statusCode).toBe(503)
    expect(held.json().error.code).toBe('RES_ERR_WORKER_BACKOFF')
    expect(Number(held.headers['retry-after'])).toBeGreaterThanOrEqual(1)
  })
})
