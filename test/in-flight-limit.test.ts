import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const EXT = `import { Extension } from 'resident-host'
const g = globalThis
g.__held = []
export default class Hold extends Extension {
  async wait() { await new Promise((r) => g.__held.push(r)); return { ok: true } }
  now() { return { ok: true } }
}`

describe('the per-process in-flight limit', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __held: Array<() => void> }
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'hold.ts': EXT }, config: { limits: { maxInFlight: 2 } } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('past limits.maxInFlight, a request gets 503 with Retry-After before its body is read; the admin surface still answers', async () => {
    const held = [fetch(`${base}/hold/wait`), fetch(`${base}/hold/wait`)]
    await expect.poll(() => g.__held.length, { timeout: 5000 }).toBe(2)
    const r = await fetch(`${base}/hold/now`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"big":"' + 'x'.repeat(500_000) + '"}' })
    expect(r.status).toBe(503)
    expect(r.headers.get('retry-after')).toBe('1')
    expect((await r.json()).error).toMatchObject({ code: 'RES_ERR_OVERLOADED', requestId: expect.any(String) })
    expect((await fetch(`${base}/_resident/status`)).status).toBe(200)
    for (const release of g.__held) release()
    await Promise.all(held)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 3000 }).toBe(0)
    expect((await fetch(`${base}/hold/now`)).status).toBe(200)
  })
})

describe('heap shedding', () => {
  it('above limits.heapShed of the heap limit, requests get 503 with Retry-After; the admin surface still answers', async () => {
    // A threshold any running process is above: what matters is the answer, not the heap.
    const t = await startTestServer({ extensions: { 'hold.ts': EXT }, config: { limits: { heapShed: 0.0001 } } })
    try {
      const r = await t.inject('/hold/now')
      expect(r.statusCode).toBe(503)
      expect(r.headers['retry-after']).toBe('5')
      expect(r.json().error.code).toBe('RES_ERR_OVERLOADED')
      expect(r.json().error.message).toMatch(/heap/)
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(200)
      // The router decodes the path: every spelling that reaches the admin surface is exempt.
      for (const url of ['/%5Fresident/status', '/%5fresident/health', '/_r%65sident/status']) {
        expect((await t.inject({ url, remoteAddress: '127.0.0.1' })).statusCode, url).toBe(200)
      }
      expect((await t.inject({ url: '/%5Fresidentx/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(503)
    } finally {
      await t.close()
    }
  })
})
