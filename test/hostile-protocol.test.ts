import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const FAULTY = `import { Extension, HttpError } from 'resident-host'
export default class Faulty extends Extension {
  crlf() { throw new HttpError(409, 'conflict', { headers: { 'x-injected': 'a\\r\\nset-cookie: evil=1' } }) }
  badname() { throw new HttpError(409, 'conflict', { headers: { 'bad name': 'x' } }) }
  long() { return new Response('hello', { headers: { 'content-length': '100', 'content-type': 'text/plain' } }) }
  short() { return new Response('hello world', { headers: { 'content-length': '2', 'content-type': 'text/plain' } }) }
  streamed() {
    const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('abc')); c.close() } })
    return new Response(body, { headers: { 'content-length': '50' } })
  }
  framing() { return new Response('framed', { headers: { 'transfer-encoding': 'chunked', connection: 'keep-alive, upgrade', upgrade: 'h2c' } }) }
  lengthy() { throw new HttpError(409, 'conflict', { headers: { 'content-length': '1', 'transfer-encoding': 'chunked' } }) }
  async *slow() {
    for (let i = 0; i < 6; i++) { yield 'chunk ' + i + '\\n'; await new Promise((r) => setTimeout(r, 40)) }
  }
  ok() { return 'ok' }
}`

const HEADERS = `import { Filter } from 'resident-host'
export default class Headers extends Filter {
  static paths = ['/faulty/ok']
  onSendResponse(req, res) { if (req.headers['x-break'] === '1') res.setHeader('x-from-filter', 'a\\nb') }
}`

/** Writes `request` on a raw connection and resolves with everything received until the server closes (or `idleMs` of silence). */
function raw(port: number, request: string | ((s: net.Socket) => void), idleMs = 1500): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => (typeof request === 'string' ? s.write(request) : request(s)))
    let data = ''
    let timer = setTimeout(() => { s.destroy(); resolve({ data, closed: false }) }, idleMs)
    s.on('data', (d) => {
      data += d
      clearTimeout(timer)
      timer = setTimeout(() => { s.destroy(); resolve({ data, closed: false }) }, idleMs)
    })
    s.on('close', () => { clearTimeout(timer); resolve({ data, closed: true }) })
    s.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET') reject(e) })
  })
}

const GET = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`

function split(data: string): { head: string; body: string } {
  const at = data.indexOf('\r\n\r\n')
  return { head: data.slice(0, at), body: data.slice(at + 4) }
}

describe('protocol faults from extensions, filters and clients', () => {
  let t: TestServer
  let port: number
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'faulty.ts': FAULTY }, filters: { 'headers.ts': HEADERS } })
    port = Number(new URL(await t.listen()).port)
  })
  afterAll(() => t.close())

  it.each(['crlf', 'badname'])('an HttpError header Node cannot send (%s) is a logged 500 naming the fault, not a raw 400', async (command) => {
    const { data } = await raw(port, GET(`/faulty/${command}`))
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 500 /)
    expect(head.toLowerCase()).not.toContain('evil')
    const error = JSON.parse(body).error
    expect(error.code).toBe('RES_ERR_BAD_HEADER')
    expect(error.requestId).toBeTruthy()
    expect(error.message).toMatch(/header/)
    expect(t.logs.some((l) => l.requestId === error.requestId && l.level >= 50)).toBe(true)
  })

  it('a filter that sets a header Node cannot send fails as that filter, with a JSON 500', async () => {
    const { data } = await raw(port, GET('/faulty/ok', 'x-break: 1\r\n'))
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 500 /)
    const error = JSON.parse(body).error
    expect(['RES_ERR_FILTER_FAILED', 'RES_ERR_BAD_HEADER']).toContain(error.code)
    expect(error.requestId).toBeTruthy()
    expect(split((await raw(port, GET('/faulty/ok'))).data).body).toBe('ok')
  })

  it.each([['long', 'hello'], ['short', 'hello world'], ['streamed', 'abc'], ['framing', 'framed']])('a web Response whose content-length is wrong (%s) is sent with the real length or none', async (command, expected) => {
    const { data, closed } = await raw(port, GET(`/faulty/${command}`))
    expect(closed).toBe(true)
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 200 /)
    const length = /content-length: (\d+)/i.exec(head)
    if (length) {
      expect(Number(length[1])).toBe(Buffer.byteLength(expected))
      expect(body).toBe(expected)
    } else {
      expect(head.toLowerCase()).toContain('transfer-encoding: chunked')
      expect(body).toContain(expected)
      expect(body.endsWith('0\r\n\r\n')).toBe(true)
    }
  })

  it('an HttpError cannot set its own framing headers', async () => {
    const { data, closed } = await raw(port, GET('/faulty/lengthy'))
    expect(closed).toBe(true)
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 409 /)
    expect(head.toLowerCase()).not.toContain('transfer-encoding')
    expect(JSON.parse(body).error.code).toBe('HTTP_409')
  })

  it('a malformed request pipelined behind a streamed response never writes into that stream', async () => {
    const { data, closed } = await raw(port, (s) => {
      s.write('GET /faulty/slow HTTP/1.1\r\nHost: localhost\r\n\r\n')
      setTimeout(() => s.write('THIS IS NOT HTTP\r\n\r\n'), 60)
    })
    expect(closed).toBe(true)
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 200 /)
    expect(body).not.toContain('HTTP/1.1')
    expect(body).not.toContain('RES_ERR')
    expect(body).toContain('chunk 5')
    expect(body.endsWith('0\r\n\r\n')).toBe(true)
  })

  it('a request with two Host headers is a JSON 400 (RFC 9112 §3.2), so no check reads one Host and a filter the other', async () => {
    const { data } = await raw(port, 'GET /_resident/status HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n')
    const { head, body } = split(data)
    expect(head).toMatch(/^HTTP\/1\.1 400 /)
    const e = JSON.parse(body).error
    expect(e.code).toBe('RES_ERR_BAD_REQUEST')
    expect(e.message).toMatch(/Host/)
    expect(e.requestId).toBeTruthy()
    expect(split((await raw(port, GET('/faulty/ok'))).data).body).toBe('ok')
  })
})
