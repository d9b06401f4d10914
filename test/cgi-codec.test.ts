import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { baseEnvironment, buildMetaVariables, headerVariable, type CgiRequest } from '../src/modes/cgi/meta.ts'
import { CgiHeadReader, CgiOutputError, parseCgiHead } from '../src/modes/cgi/response.ts'

const request = (over: Partial<CgiRequest> = {}): CgiRequest => ({
  method: 'GET',
  scriptName: '/cgi-bin/env.sh',
  pathInfo: '',
  pathTranslated: null,
  queryString: '',
  requestUri: '/cgi-bin/env.sh',
  headers: { host: 'example.test:8080' },
  contentLength: null,
  remoteAddr: '::ffff:10.1.2.3',
  remotePort: 40000,
  serverAddr: '127.0.0.1',
  serverPort: 8080,
  serverName: 'example.test',
  serverProtocol: 'HTTP/1.1',
  scheme: 'http',
  serverSoftware: 'Resident/0.1.0',
  ...over,
})

describe('CGI meta-variables (RFC 3875 §4.1)', () => {
  it('a GET without a body: the complete set, nothing conditional (golden)', () => {
    const env = buildMetaVariables(request({ queryString: 'a=1&b=%20', requestUri: '/cgi-bin/env.sh?a=1&b=%20' }), { PATH: '/usr/bin:/bin' })
    expect({ ...env }).toEqual({
      PATH: '/usr/bin:/bin',
      HTTP_HOST: 'example.test:8080',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: 'Resident/0.1.0',
      SERVER_NAME: 'example.test',
      SERVER_PORT: '8080',
      SERVER_ADDR: '127.0.0.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_METHOD: 'GET',
      REQUEST_URI: '/cgi-bin/env.sh?a=1&b=%20',
      REQUEST_SCHEME: 'http',
      SCRIPT_NAME: '/cgi-bin/env.sh',
      QUERY_STRING: 'a=1&b=%20',
      REMOTE_ADDR: '10.1.2.3',
      REMOTE_HOST: '10.1.2.3',
      REMOTE_PORT: '40000',
    })
  })

  it('a POST with a body, PATH_INFO and an authenticated user (golden)', () => {
    const env = buildMetaVariables(request({
      method: 'POST',
      pathInfo: '/a b/c',
      pathTranslated: '/srv/www/a b/c',
      contentLength: 11,
      headers: { host: 'h', 'content-type': 'text/plain', 'content-length': '11', authorization: 'Basic YTpi', 'x-forwarded-for': '1.2.3.4', cookie: ['a=1', 'b=2'] },
      remoteUser: 'alice',
      scriptFilename: '/srv/cgi-bin/env.sh',
      documentRoot: '/srv/cgi-bin',
      scheme: 'https',
    }), {}, { extra: { REDIRECT_STATUS: '200' } })
    expect(env.CONTENT_LENGTH).toBe('11')
    expect(env.CONTENT_TYPE).toBe('text/plain')
    expect(env.PATH_INFO).toBe('/a b/c')
    expect(env.PATH_TRANSLATED).toBe('/srv/www/a b/c')
    expect(env.REMOTE_USER).toBe('alice')
    expect(env.AUTH_TYPE).toBe('Basic')
    expect(env.HTTPS).toBe('on')
    expect(env.REDIRECT_STATUS).toBe('200')
    expect(env.SCRIPT_FILENAME).toBe('/srv/cgi-bin/env.sh')
    expect(env.HTTP_COOKIE).toBe('a=1; b=2')
    expect(env.HTTP_X_FORWARDED_FOR).toBe('1.2.3.4')
    // Credentials and the headers with variables of their own are not repeated as HTTP_*.
    expect(env.HTTP_AUTHORIZATION).toBeUndefined()
    expect(env.HTTP_CONTENT_LENGTH).toBeUndefined()
    expect(env.HTTP_CONTENT_TYPE).toBeUndefined()
  })

  it('CONTENT_TYPE only with a body, even when the client sent one', () => {
    const env = buildMetaVariables(request({ headers: { 'content-type': 'application/json' } }))
    expect(env.CONTENT_TYPE).toBeUndefined()
    expect(env.CONTENT_LENGTH).toBeUndefined()
  })

  it('no HTTP_PROXY (httpoxy), no names with underscores, no hop-by-hop headers, no values with NUL/CR/LF', () => {
    const env = buildMetaVariables(request({
      headers: { proxy: 'http://evil:1', x_forwarded_for: '6.6.6.6', 'x-forwarded-for': '1.1.1.1', connection: 'keep-alive', te: 'trailers', 'x-bad': 'a\nb', 'x-nul': 'a\0b' },
    }))
    expect(env.HTTP_PROXY).toBeUndefined()
    expect(env.HTTP_X_FORWARDED_FOR).toBe('1.1.1.1')
    expect(env.HTTP_CONNECTION).toBeUndefined()
    expect(env.HTTP_TE).toBeUndefined()
    expect(env.HTTP_X_BAD).toBeUndefined()
    expect(env.HTTP_X_NUL).toBeUndefined()
  })

  it('the request cannot override the gateway variables through headers', () => {
    const env = buildMetaVariables(request({ headers: { 'gateway-interface': 'x' } }))
    expect(env.GATEWAY_INTERFACE).toBe('CGI/1.1')
    expect(env.HTTP_GATEWAY_INTERFACE).toBe('x')
  })

  it('Authorization is passed only when asked', () => {
    expect(headerVariable('Authorization')).toBeNull()
    expect(headerVariable('Authorization', true)).toBe('HTTP_AUTHORIZATION')
    expect(headerVariable('Proxy-Authorization', true)).toBeNull()
  })

  it('header names map to HTTP_* only from [A-Za-z0-9-] (property)', () => {
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 20 }), (name) => {
      const v = headerVariable(name)
      if (v === null) return
      expect(name).toMatch(/^[A-Za-z0-9-]+$/)
      expect(v).toMatch(/^HTTP_[A-Z0-9_]+$/)
      expect(v).not.toBe('HTTP_PROXY')
    }))
  })

  it('the base environment is an allow-list, never the host environment', () => {
    const host = { PATH: '/opt/bin', SECRET_TOKEN: 'x', NODE_OPTIONS: '--require evil', LD_PRELOAD: '/evil.so', LANG: 'C.UTF-8' }
    expect({ ...baseEnvironment(host) }).toEqual({ PATH: '/opt/bin', LANG: 'C.UTF-8' })
    expect({ ...baseEnvironment({}, ['PATH'], { 'A=B': '1', OK: 'yes', BAD: 'a\nb' }) }).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', OK: 'yes' })
  })
})

const head = (s: string) => parseCgiHead(Buffer.from(s, 'latin1'))
const fails = (s: string, pattern: RegExp) => expect(() => head(s)).toThrow(pattern)

describe('CGI response parsing (RFC 3875 §6)', () => {
  it('a document: Content-Type, default status 200 (golden)', () => {
    expect(head('Content-Type: text/plain\nX-CGI-Thing:  a b  ')).toEqual({
      kind: 'document', status: 200, reason: null, contentType: 'text/plain', location: null,
      headers: [['content-type', 'text/plain'], ['x-cgi-thing', 'a b']],
    })
  })

  it('Status with and without a reason; names case-insensitive', () => {
    expect(head('status: 404 Not Here\ncontent-type: text/html')).toMatchObject({ status: 404, reason: 'Not Here' })
    expect(head('Status: 201')).toMatchObject({ kind: 'document', status: 201, reason: null, contentType: null })
    fails('Status: 99 x', /invalid Status/)
    fails('Status: 2000', /invalid Status/)
    fails('Status: 101 Switching', /outside 200-599/)
    fails('Status: 200\nStatus: 201', /twice/)
  })

  it('a document with no Content-Type is allowed when Status is there', () => {
    expect(head('Status: 204 No Content')).toMatchObject({ kind: 'document', status: 204, contentType: null })
  })

  it('a local redirect is a Location path alone; a path with a redirect Status goes to the client', () => {
    expect(head('Location: /cgi-bin/other.sh?x=1')).toMatchObject({ kind: 'local-redirect', location: '/cgi-bin/other.sh?x=1' })
    expect(head('Location: /next\nStatus: 303 See Other')).toMatchObject({ kind: 'client-redirect', status: 303, headers: [['location', '/next']] })
    fails('Location: /next\nX-Other: 1', /without other headers/)
    // Scheme-relative is not local.
    fails('Location: //evil.test/', /neither/)
  })

  it('an absolute Location is a client redirect: 302 unless Status says otherwise', () => {
    expect(head('Location: https://example.test/x')).toMatchObject({ kind: 'client-redirect', status: 302, headers: [['location', 'https://example.test/x']] })
    expect(head('Location: https://example.test/x\r\nStatus: 301 Moved\r\nContent-Type: text/html')).toMatchObject({ kind: 'client-redirect', status: 301, reason: 'Moved', contentType: 'text/html' })
    fails('Location: relative/path', /neither/)
  })

  it('refuses what a server must not pass on', () => {
    fails('X-Only: 1', /none of Content-Type, Location and Status/)
    fails('Content-Type: text/plain\n folded', /continuation/)
    fails('Content-Type: text/plain\nBad Name: 1', /invalid header name/)
    fails('Content-Type: text/plain\nX: a\rb', /control character/)
    fails('Content-Type: text/plain\nnocolon', /no name/)
    fails('Content-Type: text/plain\nTransfer-Encoding: chunked', /Transfer-Encoding/)
    fails('Content-Type: a\nContent-Type: b', /twice/)
  })

  it('drops hop-by-hop headers and Content-Length (the server frames the body)', () => {
    expect(head('Content-Type: a\nConnection: close\nContent-Length: 5\nKeep-Alive: x').headers).toEqual([['content-type', 'a']])
  })

  it('LF and CRLF heads, in any chunking, give the same head and body (property)', () => {
    const name = fc.stringMatching(/^X-[A-Za-z0-9-]{1,10}$/)
    const value = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/)
    fc.assert(fc.property(
      fc.array(fc.tuple(name, value), { maxLength: 6 }), fc.boolean(), fc.uint8Array({ maxLength: 40 }), fc.array(fc.nat(), { maxLength: 5 }),
      (fields, crlf, body, cuts) => {
        const eol = crlf ? '\r\n' : '\n'
        const lines = ['Content-Type: text/plain', ...fields.map(([n, v]) => `${n}: ${v}`)]
        const bytes = Buffer.concat([Buffer.from(lines.join(eol) + eol + eol, 'latin1'), Buffer.from(body)])
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
        const reader = new CgiHeadReader(64 * 1024)
        let got: ReturnType<CgiHeadReader['push']> = null
        const rest: Buffer[] = []
        let at = 0
        for (const p of [...points, bytes.length]) {
          const piece = bytes.subarray(at, p)
          at = p
          if (got === null) got = reader.push(piece)
          else rest.push(piece)
        }
        expect(got).not.toBeNull()
        expect(got!.head.headers).toEqual([['content-type', 'text/plain'], ...fields.map(([n, v]) => [n.toLowerCase(), v])])
        expect(Buffer.concat([got!.body, ...rest])).toEqual(Buffer.from(body))
      }))
  })

  it('never throws anything but a CgiOutputError, whatever the bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        const r = new CgiHeadReader(100).push(Buffer.from(bytes))
        if (r) {
          for (const [n, v] of r.head.headers) {
            expect(n).toMatch(/^[!#$%&'*+.^_`|~0-9a-z-]+$/)
            expect(v).not.toMatch(/[\0\r\n]/)
          }
        }
      } catch (e) {
        expect(e).toBeInstanceOf(CgiOutputError)
      }
    }))
  })

  it('caps the head: over the limit is an error even before the blank line', () => {
    const reader = new CgiHeadReader(32)
    expect(reader.push(Buffer.from('Content-Type: text/plain\n'))).toBeNull()
    expect(() => reader.push(Buffer.from('X-Long: ' + 'a'.repeat(40)))).toThrow(/longer than 32 bytes/)
  })

  it('output that ends before the blank line, or is empty, is invalid', () => {
    expect(() => new CgiHeadReader(100).end()).toThrow(/wrote nothing/)
    const r = new CgiHeadReader(100)
    r.push(Buffer.from('Content-Type: text/plain\n'))
    expect(() => r.end()).toThrow(/before the blank line/)
  })
})

describe('the cgi mode\'s invocation frame', () => {
  it('round-trips any plain JSON and any bytes (property)', async () => {
    const { decodeFrame, encodeFrame } = await import('../src/modes/cgi/frame.ts')
    fc.assert(fc.property(fc.jsonValue(), fc.uint8Array({ maxLength: 300 }), (meta, raw) => {
      const back = decodeFrame(encodeFrame({ v: meta }, raw))
      expect(back.meta).toEqual(JSON.parse(JSON.stringify({ v: meta })))
      expect(Buffer.from(back.raw)).toEqual(Buffer.from(raw))
    }))
  })

  it('refuses what is not a frame', async () => {
    const { decodeFrame, FrameError } = await import('../src/modes/cgi/frame.ts')
    for (const bad of ['', '{"meta":1}', 'nope\n', '{"meta":1,"rawLength":3}\nab', '{"meta":1,"rawLength":-1}\n']) {
      expect(() => decodeFrame(Buffer.from(bad))).toThrow(FrameError)
    }
  })
})
