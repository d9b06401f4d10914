import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// How long a request holds its generation: a sync body releases at once, an async command holds it
// until it settles (even after its client left), a streamed body until the stream ends.
const EXT = `import { Extension } from 'resident-host'
const g = globalThis
g.__lease = { release: null, seen: [] }
export default class Lease extends Extension {
  now() { return { ok: true } }
  async held(_p, req) {
    req.signal.addEventListener('abort', () => g.__lease.seen.push('aborted'))
    await new Promise((r) => { g.__lease.release = r })
    g.__lease.seen.push('settled')
    return 'done'
  }
  async *drip() {
    yield 'a'
    await new Promise((r) => { g.__lease.release = r })
    yield 'b'
  }
}`

describe('generation leases', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __lease: { release: (() => void) | null; seen: string[] } }
  const inFlight = () => t.server.registry.slots.get('lease')?.inFlight ?? -1
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'lease.ts': EXT } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('a synchronous command releases its lease as soon as its body is sent', async () => {
    const r = await t.inject('/lease/now')
    expect(r.json()).toEqual({ ok: true })
    expect(inFlight()).toBe(0)
    expect(t.server.registry.slots.get('lease')!.requestsTotal).toBeGreaterThanOrEqual(1)
  })

  it('an async command keeps its lease after the client leaves, until it settles', async () => {
    g.__lease.release = null
    g.__lease.seen = []
    const req = http.get(`${base}/lease/held`)
    req.on('error', () => {})
    await expect.poll(() => g.__lease.release !== null, { timeout: 5000 }).toBe(true)
    expect(inFlight()).toBe(1)
    req.destroy()
    await expect.poll(() => g.__lease.seen, { timeout: 5000 }).toEqual(['aborted'])
    expect(inFlight()).toBe(1) // the command is still running: its generation must not be evicted
    g.__lease.release!()
    await expect.poll(() => inFlight(), { timeout: 5000 }).toBe(0)
    expect(g.__lease.seen).toEqual(['aborted', 'settled'])
  })

  it('a streamed body keeps its lease until the stream has ended', async () => {
    g.__lease.release = null
    const res = await fetch(`${base}/lease/drip`)
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('a')
    expect(inFlight()).toBe(1)
    await expect.poll(() => g.__lease.release !== null, { timeout: 5000 }).toBe(true)
    g.__lease.release!()
    let rest = ''
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value)
    expect(rest).toBe('b')
    await expect.poll(() => inFlight(), { timeout: 5000 }).toBe(0)
  })
})
