import fc from 'fast-check'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { connect, exchange, get, parseResponses, post } from './helpers/raw.ts'

// Requests pipelined on one connection behind a slow one: Node answers them in order, runs their
// handlers at once, and emits no `close` for a queued response when the client leaves.
const EXT = `import { Extension, param } from 'resident-host'
import { setTimeout as sleep } from 'node:timers/promises'
const g = globalThis
g.__pipe = { ran: 0, aborted: 0 }
export default class Pipe extends Extension {
  static commands = {
    drip: { params: { chunks: param.integer({ default: 3 }), delay: param.integer({ default: 20 }) } },
    wait: { params: { ms: param.integer({ default: 60000 }) } },
  }
  async *drip({ chunks, delay }, req) {
    for (let i = 0; i < chunks; i++) {
      if (req.signal.aborted) return
      yield 'c' + i + '\\n'
      await sleep(delay, undefined, { signal: req.signal }).catch(() => undefined)
    }
  }
  async wait({ ms }, req) {
    g.__pipe.ran++
    req.signal.addEventListener('abort', () => { g.__pipe.aborted++ })
    await sleep(ms, undefined, { signal: req.signal }).catch(() => undefined)
    return { ok: true }
  }
  now(params) { return { ok: true, params } }
}`

describe('pipelined requests', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __pipe: { ran: number; aborted: number } }
  const leases = () => t.server.registry.slots.get('pipe')?.inFlight ?? 0
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'pipe.ts': EXT } })
    base = await t.listen()
    await fetch(`${base}/pipe/now`)
  })
  afterAll(() => t.close())
  beforeEach(() => { g.__pipe.ran = 0; g.__pipe.aborted = 0 })

  it('queued behind a stream, they are aborted and release their leases when the client leaves', async () => {
    const s = await connect(base)
    s.on('error', () => {})
    s.write(get('/pipe/drip?chunks=100&delay=5000') + get('/pipe/wait').repeat(4))
    await expect.poll(() => g.__pipe.ran, { timeout: 5000 }).toBe(4)
    expect(leases()).toBe(5)
    s.destroy()
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(0)
    expect(g.__pipe.aborted).toBe(4)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(0)
  })

  it('queued streams end when the client leaves', async () => {
    const s = await connect(base)
    s.on('error', () => {})
    s.write(get('/pipe/drip?chunks=100&delay=5000').repeat(5))
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(5)
    s.destroy()
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(0)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(0)
  })

  it('a refused request whose body was never read does not stop the server seeing the client leave', async () => {
    // Found by the fuzz: a HEAD stream writes nothing, and a rejected request's unread body fills
    // the socket's buffers, so Node stopped reading it and never saw the hang-up.
    const s = await connect(base)
    s.on('error', () => {})
    s.write(get('/pipe/drip?chunks=100&delay=5000').replace('GET', 'HEAD') + post('/pipe/%zz', `[${Array(200_000).fill('[]').join(',')}]`))
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(1)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(2)
    s.destroy()
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(0)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(0)
  })

  it('bytes that keep arriving after a malformed pipelined request add nothing per chunk while the response ahead finishes', async () => {
    // Found by the fuzz: each chunk after the parse error raised another clientError, and each
    // added a close listener to the response in progress (MaxListenersExceededWarning).
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      const s = await connect(base)
      s.on('error', () => {})
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      const closed = new Promise((r) => s.on('close', r))
      s.write(get('/pipe/drip?chunks=3&delay=300') + 'NOT HTTP\r\n')
      for (let i = 0; i < 15; i++) {
        await new Promise((r) => setTimeout(r, 20))
        if (!s.destroyed) s.write('more garbage\r\n')
      }
      await closed
      const [r] = parseResponses(Buffer.concat(chunks).toString('latin1'))
      expect(r!.status).toBe(200)
      expect(r!.body).toBe('c0\nc1\nc2\n')
      expect(warnings).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('past limits.pipeline, a request is refused with 503 before its body is read, and the connection closes', async () => {
    const limit = t.server.config.limits.pipeline
    const body = JSON.stringify({ x: 'y'.repeat(1000) })
    const text = await exchange(base, get('/pipe/drip?chunks=2&delay=200') + post('/pipe/now', body).repeat(limit + 4))
    const responses = parseResponses(text)
    expect(responses.slice(0, limit).map((r) => r.status)).toEqual(Array(limit).fill(200))
    const refused = responses[limit]!
    expect(refused.status).toBe(503)
    expect(refused.headers.connection).toBe('close')
    expect(refused.headers['retry-after']).toBe('1')
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'RES_ERR_PIPELINE_LIMIT', requestId: expect.any(String) })
    expect(responses).toHaveLength(limit + 1) // nothing after the close
    await expect.poll(() => leases(), { timeout: 5000 }).toBe(0)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(0)
  })

  it('after any pipeline and any disconnect, every lease and every in-flight count returns to 0', async () => {
    const request = fc.oneof(
      fc.constant(get('/pipe/now')),
      fc.integer({ min: 1, max: 4 }).map((n) => get(`/pipe/drip?chunks=${n}&delay=30`)),
      fc.constant(get('/pipe/drip?chunks=100&delay=5000')),
      fc.integer({ min: 0, max: 80 }).map((ms) => get(`/pipe/wait?ms=${ms}`)),
      fc.constant(get('/pipe/wait')),
      fc.constant(post('/pipe/now', '{"a":[1,2,3]}')),
      fc.constant(post('/pipe/now', '{"a":')),
      fc.constant(get('/pipe/drip?chunks=100&delay=5000').replace('GET', 'HEAD')),
      // Refused before their bodies are read (a bad URL, no such command): the unread bodies.
      fc.integer({ min: 1, max: 300_000 }).map((n) => post('/pipe/%zz', 'x'.repeat(n))),
      fc.integer({ min: 1, max: 300_000 }).map((n) => post('/nope/x', 'x'.repeat(n))),
      // A GET's body is never parsed: answered, it is left unread too.
      fc.integer({ min: 1, max: 300_000 }).map((n) => get('/pipe/now', `Content-Length: ${n}\r\n`) + 'x'.repeat(n)),
    )
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ pipeline: fc.array(request, { minLength: 1, maxLength: 12 }), leaveAfter: fc.integer({ min: 0, max: 120 }), cut: fc.boolean() }), { minLength: 1, maxLength: 4 }),
      async (connections) => {
        await Promise.all(connections.map(async ({ pipeline, leaveAfter, cut }) => {
          const s = await connect(base)
          s.on('error', () => {})
          s.on('data', () => {})
          const bytes = pipeline.join('')
          // A cut pipeline ends mid-request: the last one is never complete.
          s.write(cut ? bytes.slice(0, bytes.length - 3) : bytes)
          await new Promise((r) => setTimeout(r, leaveAfter))
          s.destroy()
        }))
        await expect.poll(() => leases(), { timeout: 5000 }).toBe(0)
        await expect.poll(() => t.server.budget.inFlight, { timeout: 5000 }).toBe(0)
      },
    ), { seed: 19, numRuns: 25 })
  })
})
