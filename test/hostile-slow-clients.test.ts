import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  static commands = { body: { methods: ['POST'] } }
  body(params, request) { return { bytes: request.rawBody.length } }
  index() { return 'ok' }
}`

interface Exchange { data: string; closedAfterMs: number }

/** Opens a raw connection, runs `feed` on it, and resolves with what came back once the server closed it. */
function exchange(port: number, feed: (s: net.Socket) => void): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const s = net.connect(port, '127.0.0.1', () => feed(s))
    let data = ''
    s.on('data', (d) => { data += d })
    s.on('close', () => resolve({ data, closedAfterMs: Date.now() - started }))
    s.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e) })
  })
}

function json408(raw: string): { code: string; requestId: string; message: string } {
  expect(raw).toMatch(/^HTTP\/1\.1 408 /)
  expect(raw.toLowerCase()).toContain('connection: close')
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: { code: string; requestId: string; message: string } }
  expect(body.error.code).toBe('RES_ERR_REQUEST_TIMEOUT')
  expect(body.error.requestId).toBeTruthy()
  return body.error
}

describe('slow clients are cut off by separate, configured timeouts', () => {
  let t: TestServer
  let port: number
  let base: string
  beforeAll(async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      // Far below the defaults so the test is quick; the command deadline (requestTimeout) stays long.
      config: { headersTimeout: 400, bodyTimeout: 600, keepAliveTimeout: 300, requestTimeout: '60s', maxConnections: 4 },
    })
    base = await t.listen()
    port = Number(new URL(base).port)
  })
  afterAll(() => t.close())

  it('a connection that sends nothing gets a JSON 408 and is closed', async () => {
    const r = await exchange(port, () => {})
    json408(r.data)
  })

  it('trickled headers get a JSON 408 and the connection is closed', async () => {
    let timer: NodeJS.Timeout | undefined
    const r = await exchange(port, (s) => {
      s.write('GET /echo/ HTTP/1.1\r\nHost: localhost\r\n')
      let i = 0
      timer = setInterval(() => { if (s.writable) s.write(`x-slow-${i++}: 1\r\n`) }, 50)
    })
    clearInterval(timer)
    json408(r.data)
  })

  it('a body that stops arriving gets a JSON 408 under the request\'s own id, not a 400', async () => {
    const r = await exchange(port, (s) => {
      s.write('POST /echo/body HTTP/1.1\r\nHost: localhost\r\nx-request-id: ignored\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n1234567')
    })
    const e = json408(r.data)
    expect(e.message).toMatch(/bodyTimeout/)
    const logged = t.logs.find((l) => l.requestId === e.requestId)
    expect(logged?.msg).toMatch(/408/)
  })

  it('an idle keep-alive connection is closed without a response', async () => {
    const r = await exchange(port, (s) => s.write('GET /echo/ HTTP/1.1\r\nHost: localhost\r\n\r\n'))
    expect(r.data).toMatch(/^HTTP\/1\.1 200 /)
    expect(r.data.match(/HTTP\/1\.1/g)).toHaveLength(1)
  })

  it('refuses connections past maxConnections at once, and takes new ones when a slot frees', async () => {
    const open: net.Socket[] = []
    try {
      for (let i = 0; i < 4; i++) {
        const s = net.connect(port, '127.0.0.1')
        await new Promise((r) => s.once('connect', r))
        s.on('error', () => {})
        open.push(s)
      }
      // Each accepted connection is in the server's hands before the next test step.
      await new Promise((r) => setTimeout(r, 50))
      const refused = await exchange(port, (s) => s.write('GET /echo/ HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      expect(refused.data).toBe('')
      for (const s of open) s.destroy()
      open.length = 0
      await new Promise((r) => setTimeout(r, 50))
      expect(await (await fetch(`${base}/echo/`)).text()).toBe('ok')
      expect(t.logs.some((l) => /maxConnections/.test(l.msg))).toBe(true)
    } finally {
      for (const s of open) s.destroy()
    }
  })

  it('serves a good request afterwards', async () => {
    const r = await fetch(`${base}/echo/body`, { method: 'POST', body: '1234567', headers: { 'content-type': 'application/octet-stream' } })
    expect(await r.json()).toEqual({ bytes: 7 })
  })
})
