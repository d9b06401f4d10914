import { symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const CALC = `import { Extension } from 'resident-host'
export default class Calc extends Extension { add() { return 'calc' } }`

describe('no request can load a file outside the extensions folder', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    const outside = path.join(t.dir, 'outside.ts')
    writeFileSync(outside, `globalThis.__outsideLoaded = true
import { Extension } from 'resident-host'
export default class O extends Extension { index() { return 'outside' } }`)
    symlinkSync(outside, path.join(t.extensionsDir, 'evil.ts'))
    symlinkSync(path.join(t.extensionsDir, 'calc.ts'), path.join(t.extensionsDir, 'alias.ts'))
  })
  afterAll(() => t.close())

  it.each([
    '/../outside/', '/..%2foutside/', '/%2e%2e/outside', '/%2e%2e%2foutside/index', '/extensions%2fcalc/add',
    '/calc%00/add', '/calc/add%00', '/%2Ftmp%2Foutside/', '/..\\outside/', '//outside/', '/calc/..%2f..%2foutside',
    '/evil/', '/EVIL/', '/calc/%2e%2e',
  ])('%s never loads anything outside', async (url) => {
    const r = await t.inject(url)
    expect([400, 404]).toContain(r.statusCode)
    expect(r.json().error.requestId).toBeTruthy()
    expect((globalThis as { __outsideLoaded?: boolean }).__outsideLoaded).toBeUndefined()
  })

  it('follows a symlink that stays inside the folder', async () => {
    expect((await t.inject('/alias/add')).body).toBe('calc')
  })

  it('any path at all: a 4xx with a request id or a success, never a crash', async () => {
    await fc.assert(fc.asyncProperty(fc.webPath(), fc.webQueryParameters(), async (p, q) => {
      const r = await t.inject({ method: 'GET', url: `${p.startsWith('/') ? p : '/' + p}?${q}` })
      expect(r.statusCode).toBeLessThan(500)
      if (r.statusCode >= 400) expect(r.json().error.requestId).toBeTruthy()
    }), { numRuns: 300 })
    expect((globalThis as { __outsideLoaded?: boolean }).__outsideLoaded).toBeUndefined()
    expect((await t.inject('/calc/add')).statusCode).toBe(200)
  })

  it('answers a malformed HTTP request with a JSON 400 and a request id', async () => {
    const url = new URL(await t.listen())
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(url.port), url.hostname, () => s.write('GET /calc/add HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'))
      let data = ''
      s.on('data', (d) => { data += d })
      s.on('end', () => resolve(data))
      s.on('error', reject)
    })
    expect(raw).toMatch(/^HTTP\/1\.1 400/)
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))
    expect(body.error.code).toBe('RES_ERR_BAD_REQUEST')
    expect(body.error.requestId).toBeTruthy()
    expect((await fetch(`${url.origin}/calc/add`)).status).toBe(200)
  })
})

describe('the admin surface', () => {
  it('answers loopback only without a token', async () => {
    const t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    try {
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(200)
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '::1' })).statusCode).toBe(200)
      const r = await t.inject({ url: '/_resident/status', remoteAddress: '10.1.2.3' })
      expect(r.statusCode).toBe(403)
      expect(r.json().error.code).toBe('RES_ERR_ADMIN_FORBIDDEN')
      const post = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/calc/unload', remoteAddress: '192.168.0.9' })
      expect(post.statusCode).toBe(403)
      const spoofed = await t.inject({ url: '/_resident/status', remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '127.0.0.1' } })
      expect(spoofed.statusCode).toBe(403)
    } finally {
      await t.close()
    }
  })

  it('answers only a valid bearer token once one is configured', async () => {
    const token = 'a-long-enough-admin-token'
    const t = await startTestServer({ config: { admin: { token } }, extensions: { 'calc.ts': CALC } })
    try {
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '10.1.2.3' })).statusCode).toBe(403)
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '10.1.2.3', headers: { authorization: 'Bearer wrong-token-of-same-len' } })).statusCode).toBe(403)
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '10.1.2.3', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200)
      expect((await t.inject({ url: '/_resident/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(403)
    } finally {
      await t.close()
    }
  })
})
