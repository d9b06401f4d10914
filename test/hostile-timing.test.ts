import crypto from 'node:crypto'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// Timing itself is not tested (tests check behaviour, never timing): what is checked is the shape
// of every comparison — always fixed-length digests, always every secret.
const root = path.resolve(import.meta.dirname, '..')
const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`

describe('secrets are compared in constant time', () => {
  let t: TestServer
  let spy: ReturnType<typeof vi.spyOn>
  beforeAll(async () => {
    t = await startTestServer({
      config: {
        extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'filters'),
        filters: { modules: { 'basic-auth': { config: { user: 'demo', password: 'demo' } } } },
        admin: { token: 'a-long-enough-admin-token' },
      },
    })
  })
  afterAll(() => t.close())
  afterEach(() => spy?.mockRestore())

  it('basic-auth compares the user and the password, both as digests, whatever is wrong', async () => {
    spy = vi.spyOn(crypto, 'timingSafeEqual')
    for (const [creds, status] of [['nobody:demo', 401], ['demo:wrong-and-much-longer', 401], ['x:y', 401], ['demo:demo', 200]] as const) {
      spy.mockClear()
      const r = await t.inject({ url: '/secret/', headers: { authorization: basic(creds) } })
      expect(r.statusCode, creds).toBe(status)
      expect(spy.mock.calls.length, creds).toBe(2)
      for (const [a, b] of spy.mock.calls) expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32])
    }
  })

  it('the admin token check compares digests, whatever the length given', async () => {
    spy = vi.spyOn(crypto, 'timingSafeEqual')
    for (const given of ['short', 'a-long-enough-admin-token-but-longer', 'a-long-enough-admin-tokeX']) {
      spy.mockClear()
      const r = await t.inject({ url: '/_resident/status', headers: { authorization: `Bearer ${given}` } })
      expect(r.statusCode).toBe(403)
      expect(spy.mock.calls.length, given).toBe(1)
      expect((spy.mock.calls[0]![0] as Buffer).length).toBe(32)
    }
    expect((await t.inject({ url: '/_resident/status', headers: { authorization: 'Bearer a-long-enough-admin-token' } })).statusCode).toBe(200)
    // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
    expect((await t.inject({ url: '/_resident/status', headers: { authorization: 'bearer  a-long-enough-admin-token' } })).statusCode).toBe(200)
    expect((await t.inject({ url: '/_resident/status', headers: { authorization: 'Bearer A-long-enough-admin-token' } })).statusCode).toBe(403)
  })
})
