import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const CALC = `import { Extension } from 'resident-host'
export default class Calc extends Extension { add() { return 'calc' } }`

// Over a real socket: Host, Origin and the form's content type are what a browser would send.
describe('the admin surface refuses DNS rebinding and cross-site requests', () => {
  let t: TestServer
  let base: string
  // node:http, not fetch: fetch will not send a Host header of our choosing.
  const call = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, url = base) =>
    new Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(url + path, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
        let text = ''
        res.on('data', (d) => { text += d })
        res.on('end', () => resolve({ status: res.statusCode!, body: /json/.test(String(res.headers['content-type'])) ? JSON.parse(text) : text, headers: res.headers }))
      })
      req.on('error', reject)
      req.end(init.body)
    })
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('answers loopback Host names', async () => {
    const port = new URL(base).port
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `app.localhost:${port}`]) {
      const r = await call('/_resident/status', { headers: { host } })
      expect(r.status, host).toBe(200)
    }
  })

  it('refuses a foreign Host (a rebound DNS name) with a JSON 403', async () => {
    for (const host of ['attacker.example', 'attacker.example:3000', '127.0.0.1.attacker.example', 'localhost.attacker.example']) {
      const r = await call('/_resident/status', { headers: { host } })
      expect(r.status, host).toBe(403)
      expect(r.body.error.code).toBe('RES_ERR_ADMIN_FORBIDDEN')
      expect(r.body.error.requestId).toBeTruthy()
    }
  })

  it('refuses a cross-site Origin, even for a read', async () => {
    const port = new URL(base).port
    for (const origin of ['https://attacker.example', 'null', `http://localhost:${Number(port) + 1}`]) {
      const r = await call('/_resident/status', { headers: { origin } })
      expect(r.status, origin).toBe(403)
    }
    expect((await call('/_resident/status', { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403)
    expect((await call('/_resident/status', { headers: { origin: `http://127.0.0.1:${port}` } })).status).toBe(200)
  })

  it('makes a state-changing call impossible as a simple cross-site request', async () => {
    await call('/calc/add')
    // What a cross-site form can send: no custom header, a simple content type.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      for (const action of ['extensions/calc/reload', 'extensions/calc/unload', 'extensions/calc/load', 'filters/reload']) {
        const r = await call(`/_resident/${action}`, { method: 'POST', headers: { 'content-type': type }, body: 'x=1' })
        expect(r.status, `${action} ${type}`).toBe(403)
        expect(r.body.error.message).toContain('x-resident-admin')
      }
    }
    const status = await call('/_resident/status')
    expect(status.body.extensions.find((e: { name: string }) => e.name === 'calc')).toMatchObject({ state: 'resident', generation: 1 })
    // The header a page on another site could only send after a preflight, which is never granted.
    const ok = await call('/_resident/extensions/calc/reload', { method: 'POST', headers: { 'x-resident-admin': '1' } })
    expect(ok.status).toBe(200)
    const preflight = await call('/_resident/extensions/calc/reload', { method: 'OPTIONS', headers: { origin: 'https://attacker.example', 'access-control-request-method': 'POST' } })
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('answers a configured admin host', async () => {
    const s = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { admin: { hosts: ['admin.internal'] } } })
    try {
      const url = await s.listen()
      expect((await call('/_resident/status', { headers: { host: 'admin.internal:8080' } }, url)).status).toBe(200)
      expect((await call('/_resident/status', { headers: { host: 'other.internal' } }, url)).status).toBe(403)
    } finally {
      await s.close()
    }
  })
})
