import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// request.clientAddress is read lazily (most commands never ask), yet it must still be right when
// a command asks after its client has gone and the socket no longer knows its peer.
const EXT = `import { Extension } from 'resident-host'
const g = globalThis
g.__addr = { late: null, release: null }
export default class Addr extends Extension {
  now(_p, req) { return { address: req.clientAddress } }
  async later(_p, req) {
    await new Promise((r) => req.signal.addEventListener('abort', r))
    await new Promise((r) => setTimeout(r, 20))
    g.__addr.late = req.clientAddress
    return 'done'
  }
}`

describe('request.clientAddress', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __addr: { late: string | null } }
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'addr.ts': EXT } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('is the peer address of the connection', async () => {
    const res = await fetch(`${base}/addr/now`)
    expect(await res.json()).toEqual({ address: '127.0.0.1' })
  })

  it('is still known when an async command reads it after its client has left', async () => {
    const req = http.get(`${base}/addr/later`)
    req.on('error', () => {})
    await expect.poll(() => t.server.registry.slots.get('addr')?.inFlight ?? 0, { timeout: 5000 }).toBe(1)
    req.destroy()
    await expect.poll(() => g.__addr.late, { timeout: 5000 }).toBe('127.0.0.1')
  })
})
