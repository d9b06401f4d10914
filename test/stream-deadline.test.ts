import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { connect, get } from './helpers/raw.ts'

// A streamed response is part of the request: past its deadline it is cut off, its signal aborts
// with RES_ERR_TIMEOUT, and its lease ends (a stream of 100 chunks 5 s apart ran for 495 s).
const EXT = `import { Extension, param } from 'resident-host'
import { setTimeout as sleep } from 'node:timers/promises'
const g = globalThis
g.__reasons = []
export default class Drip extends Extension {
  static commands = { index: { params: { chunks: param.integer({ default: 100 }), delay: param.integer({ default: 5000 }) } } }
  async *index({ chunks, delay }, req) {
    req.signal.addEventListener('abort', () => g.__reasons.push(req.signal.reason?.code ?? req.signal.reason?.message))
    for (let i = 0; i < chunks; i++) {
      yield 'chunk ' + i + '\\n'
      await sleep(delay, undefined, { signal: req.signal }).catch(() => undefined)
      if (req.signal.aborted) return
    }
  }
}`

describe('deadlines apply to the whole response', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __reasons: unknown[] }
  const leases = () => t.server.registry.slots.get('drip')?.inFlight ?? 0
  beforeAll(async () => {
    t = await startTestServer({ config: { requestTimeout: 10_000, limits: { streamTimeout: 400 } }, extensions: { 'drip.ts': EXT } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('a stream past limits.streamTimeout is cut off, its signal aborted with RES_ERR_TIMEOUT, its lease released', async () => {
    g.__reasons = []
    const res = await fetch(`${base}/drip/?chunks=100&delay=100`)
    expect(res.status).toBe(200)
    let text = ''
    const reader = res.body!.getReader()
    await expect((async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
    })()).rejects.toThrow()
    expect(text).toMatch(/^chunk 0\n/)
    expect(text).not.toMatch(/chunk 99/)
    expect(g.__reasons).toEqual(['RES_ERR_TIMEOUT'])
    await expect.poll(() => leases(), { timeout: 3000 }).toBe(0)
    expect(t.logs.some((l) => /past its deadline/.test(l.msg))).toBe(true)
  })

  it('a stream queued behind another on a pipelined connection is ended at its deadline too', async () => {
    g.__reasons = []
    const s = await connect(base)
    s.on('error', () => {})
    s.on('data', () => {})
    s.write(get('/drip/?chunks=100&delay=100').repeat(3))
    await expect.poll(() => g.__reasons.length, { timeout: 5000 }).toBe(3)
    await expect.poll(() => leases(), { timeout: 3000 }).toBe(0)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 3000 }).toBe(0)
    s.destroy()
  })
})

describe('every lease ends', () => {
  it('a command that ignores its signal releases its lease at its deadline (the client has its 504)', async () => {
    const t = await startTestServer({
      config: { requestTimeout: 300 },
      extensions: { 'stuck.ts': `import { Extension } from 'resident-host'
export default class Stuck extends Extension { async forever() { await new Promise(() => {}) } }` },
    })
    try {
      const base = await t.listen()
      const r = await fetch(`${base}/stuck/forever`)
      expect(r.status).toBe(504)
      expect((await r.json()).error.code).toBe('RES_ERR_TIMEOUT')
      await expect.poll(() => t.server.registry.slots.get('stuck')?.inFlight, { timeout: 3000 }).toBe(0)
    } finally {
      await t.close()
    }
  })
})
