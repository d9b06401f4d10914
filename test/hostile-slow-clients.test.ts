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

// A client that asks and then never reads: what the server wrote waits in its memory (and, for a
// stream, the command waits on backpressure) for as long as the connection lives. sendTimeout ends
// a response that makes no progress, as nginx's send_timeout does.
const BIG = `import { Extension } from 'resident-host'
export default class Big extends Extension {
  ended = 0
  blob() { return 'y'.repeat(16 * 1024 * 1024) }
  async *stream(_p, request) {
    const chunk = 'z'.repeat(64 * 1024)
    try {
      for (let i = 0; i < 100000 && !request.signal.aborted; i++) yield chunk
    } finally { this.ended++ }
  }
  endedStreams() { return { ended: this.ended } }
}`

describe('a client that stops reading its response is cut off after sendTimeout', () => {
  const SEND_TIMEOUT = 2000
  let t: TestServer
  let port: number
  let base: string
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'big.ts': BIG }, config: { sendTimeout: SEND_TIMEOUT, requestTimeout: '60s', keepAliveTimeout: '60s' } })
    base = await t.listen()
    port = Number(new URL(base).port)
  })
  afterAll(() => t.close())

  /**
   * Sends `request`, stops reading at the first bytes, and once the server has given up on it
   * (its log says so) reads the rest: resolves with what arrived before the connection ended.
   */
  async function stopReading(request: string, logged: number): Promise<number> {
    let received = 0
    const s = net.connect(port, '127.0.0.1', () => s.write(request))
    s.on('data', (d) => { received += d.length })
    s.once('data', () => s.pause())
    s.on('error', () => {})
    const closed = new Promise((r) => s.on('close', r))
    await expect.poll(() => t.logs.filter((l) => /\(sendTimeout\)/.test(l.msg)).length, { timeout: 15_000 }).toBe(logged)
    s.resume()
    await closed
    return received
  }

  it('a large body nobody reads: the connection is closed and the request leaves the server', async () => {
    const received = await stopReading('GET /big/blob HTTP/1.1\r\nHost: localhost\r\n\r\n', 1)
    expect(received).toBeLessThan(16 * 1024 * 1024)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 10_000 }).toBe(0)
  })

  it('a stream nobody reads: the connection is closed and the command sees its abort', async () => {
    await stopReading('GET /big/stream HTTP/1.1\r\nHost: localhost\r\n\r\n', 2)
    await expect.poll(async () => (await (await fetch(`${base}/big/endedStreams`)).json()).ended, { timeout: 10_000 }).toBe(1)
  })

  it('a slow reader that keeps making progress is not cut off', async () => {
    const total = await new Promise<number>((resolve, reject) => {
      let received = 0
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /big/blob HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
      s.pause()
      // Four short reads 0.6 × sendTimeout apart (so the exchange outlasts sendTimeout twice over
      // while no pause reaches it), then the rest.
      let bursts = 0
      const burst = () => {
        bursts++
        s.resume()
        setTimeout(() => { s.pause(); if (!s.destroyed) setTimeout(burst, SEND_TIMEOUT * 0.6) }, bursts < 4 ? 20 : 5_000)
      }
      setTimeout(burst, SEND_TIMEOUT * 0.6)
      s.on('data', (d) => { received += d.length })
      s.on('error', reject)
      s.on('close', () => resolve(received))
    })
    expect(total).toBeGreaterThan(16 * 1024 * 1024)
  }, 30_000)
})
