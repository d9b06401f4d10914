import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { connect, exchange, parseResponses } from './helpers/raw.ts'

// Requests that Node or fastify used to answer on their own (or not at all): each must get
// Resident's JSON error with a request id, the filters' headers and an access-log line.
const FILTER = `import { Filter } from 'resident-host'
const g = globalThis
g.__logged = []
export default class Mark extends Filter {
  onSendResponse(_req, res) { res.setHeader('x-filtered', 'yes') }
  onLog(_req, e) { g.__logged.push(e.method + ' ' + e.status) }
}`
const HELLO = `import { Extension } from 'resident-host'
export default class Hello extends Extension { greet() { return 'hi' } }`

describe('every rejection is Resident\'s', () => {
  let t: TestServer
  let base: string
  const g = globalThis as unknown as { __logged: string[] }
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'hello.ts': HELLO }, filters: { 'mark.ts': FILTER } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  async function one(bytes: string): Promise<{ status: number; headers: Record<string, string>; error: { code: string; requestId: string; message: string } }> {
    g.__logged = []
    const [r] = parseResponses(await exchange(base, bytes, 3000))
    expect(r, 'no response').toBeDefined()
    expect(r!.headers['content-type']).toMatch(/^application\/json/)
    expect(r!.headers['x-filtered']).toBe('yes')
    const body = JSON.parse(r!.body) as { error: { code: string; requestId: string; message: string } }
    expect(body.error.requestId).toEqual(expect.any(String))
    await expect.poll(() => g.__logged.length, { timeout: 3000 }).toBe(1)
    return { status: r!.status, headers: r!.headers, error: body.error }
  }

  it('a malformed percent-encoding', async () => {
    const r = await one('GET /secret/%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    expect(r.status).toBe(400)
    expect(r.error.code).toBe('RES_ERR_BAD_REQUEST')
  })

  it('an HTTP/1.1 request without Host', async () => {
    const r = await one('GET /hello/greet HTTP/1.1\r\nConnection: close\r\n\r\n')
    expect(r.status).toBe(400)
    expect(r.error.message).toMatch(/Host/)
  })

  it('an Expect other than 100-continue', async () => {
    const r = await one('GET /hello/greet HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\n\r\n')
    expect(r.status).toBe(417)
    expect(r.error.code).toBe('RES_ERR_EXPECTATION_FAILED')
  })

  it('CONNECT', async () => {
    const r = await one('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    expect(r.status).toBe(405)
    expect(r.error.code).toBe('RES_ERR_METHOD_NOT_ALLOWED')
  })

  it('a target that is neither a path nor an http(s) URL', async () => {
    const r = await one('GET ftp://localhost/hello/greet HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    expect(r.status).toBe(400)
    expect(r.error.message).toMatch(/path or an absolute URL/)
  })

  it('a target Node\'s parser refuses still gets Resident\'s JSON error (no filter runs before a request exists)', async () => {
    const [r] = parseResponses(await exchange(base, 'GET hello/greet HTTP/1.1\r\nHost: localhost\r\n\r\n'))
    expect(r!.status).toBe(400)
    expect(JSON.parse(r!.body).error).toMatchObject({ code: 'RES_ERR_BAD_REQUEST', requestId: expect.any(String) })
  })

  it('absolute-form targets are routed as RFC 9112 says: the path, with the authority as Host', async () => {
    const [r] = parseResponses(await exchange(base, 'GET http://localhost/hello/greet HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n'))
    expect(r!.status).toBe(200)
    expect(r!.body).toBe('hi')
  })

  it('a 404 through absolute-form is Resident\'s, like any other', async () => {
    const r = await one('GET http://localhost/nothing/here HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    expect(r.status).toBe(404)
    expect(r.error.code).toBe('RES_ERR_NOT_FOUND')
  })

  it('a client that leaves mid-body is a client fault in the log, not a failed command', async () => {
    g.__logged = []
    const s = await connect(base)
    s.on('error', () => {})
    s.write('POST /hello/greet HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":')
    await new Promise((r) => setTimeout(r, 100))
    s.destroy()
    await expect.poll(() => g.__logged.length, { timeout: 3000 }).toBe(1)
    expect(t.logs.filter((l) => (l as { level: number }).level >= 50).map((l) => l.msg)).toEqual([])
  })

  it('a body whose chunked framing breaks is answered at once, under its own request id', async () => {
    // Node's parser fails after the request was handed over: it used to wait for bodyTimeout.
    const text = await exchange(base, 'POST /hello/greet HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 3000)
    const [r] = parseResponses(text)
    expect(r, 'no response').toBeDefined()
    expect(r!.status).toBe(400)
    expect(r!.headers.connection).toBe('close')
    const error = JSON.parse(r!.body).error
    expect(error).toMatchObject({ code: 'RES_ERR_BAD_REQUEST', requestId: expect.any(String) })
    expect(error.message).toMatch(/malformed/)
  })
})
