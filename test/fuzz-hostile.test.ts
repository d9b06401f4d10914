import http from 'node:http'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// The shipped examples and filters, attacked with arbitrary requests over real sockets. Bounded
// (a fixed seed, a fixed number of runs) so it costs a few seconds of every `npm test`.
const root = path.resolve(import.meta.dirname, '..')
const shipped = JSON.parse(readFileSync(path.join(root, 'resident.config.json'), 'utf8')) as { filters: unknown; extensions: unknown }

const BOUND_MS = 10_000

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

function send(agent: http.Agent, base: URL, method: string, target: string, headers: Record<string, string>, body: Buffer | null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path: target, headers, agent, timeout: BOUND_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${BOUND_MS} ms: ${method} ${target}`)))
    req.on('error', reject)
    req.end(body ?? undefined)
  })
}

// Names that reach real extensions and filters, so the fuzz gets past the router often.
const NAMES = ['hello', 'calc', 'counter', 'markdown', 'stream', 'secret', 'scripts', 'HELLO', 'Calc', '%68ello', 'mar%E2%84%AAdown', '..', '%2e%2e', '_resident', '']
const COMMANDS = ['', 'greet', 'add', 'div', 'increment', 'value', 'render', 'index', 'calc.dll', 'constructor', '__proto__', 'toString', 'Add', 'status']

const segment = fc.oneof(
  fc.constantFrom(...NAMES, ...COMMANDS),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 6 }).map(encodeURIComponent),
  // Malformed percent-encodings too (`%`, `%zz`).
  fc.stringMatching(/^[a-z%0-9.~-]{0,10}$/),
)
const pathArb = fc.oneof(
  fc.tuple(segment, segment).map(([a, b]) => `/${a}/${b}`),
  fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`),
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
)
const key = fc.oneof(fc.constantFrom('name', 'a', 'b', 'text', 'chunks', 'delay', '__proto__', 'constructor', 'a[]', 'polluted'), fc.string({ maxLength: 8 }))
const value = fc.oneof(fc.constantFrom('1', '0', '-1', '1e400', 'NaN', 'true', '', '9007199254740993', '5'), fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 10 }))
const queryArb = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(key, value), { maxLength: 8 }).map((pairs) => new URLSearchParams(pairs).toString()),
  fc.webQueryParameters(),
  fc.string({ maxLength: 30 }).map((s) => encodeURI(s)),
)

const bodyArb: fc.Arbitrary<{ type: string | null; body: Buffer | null }> = fc.oneof(
  fc.constant({ type: null, body: null }),
  fc.array(fc.tuple(key, value), { maxLength: 20 }).map((p) => ({ type: 'application/x-www-form-urlencoded', body: Buffer.from(new URLSearchParams(p).toString()) })),
  fc.json({ maxDepth: 4 }).map((j) => ({ type: 'application/json', body: Buffer.from(j) })),
  fc.string({ maxLength: 40 }).map((s) => ({ type: 'application/json', body: Buffer.from(s) })),
  fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 40 })).map(([b, s]) => ({
    type: `multipart/form-data; boundary=${b.replace(/[^\w]/g, '') || 'x'}`,
    body: Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\n${s}\r\n--${b}--\r\n`),
  })),
  fc.uint8Array({ maxLength: 200 }).map((u) => ({ type: 'application/octet-stream', body: Buffer.from(u) })),
  fc.tuple(fc.constantFrom('text/plain', 'image/png', 'application/xml', 'text/html; charset=x', ';;', 'application/json; charset=utf-16'), fc.uint8Array({ maxLength: 60 }))
    .map(([type, u]) => ({ type, body: Buffer.from(u) })),
)

// Header values Node will send (no CR, LF or NUL; a client that sends those is refused by Node's
// parser, which the raw-socket tests cover).
const headerValue = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\x00-\x1f\x7f]/g, ' ').trim())
const headersArb = fc.record({
  authorization: fc.oneof(fc.constant(undefined), headerValue, fc.string({ maxLength: 20 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`), fc.constant(`Basic ${Buffer.from('demo:demo').toString('base64')}`)),
  'x-request-id': fc.oneof(fc.constant(undefined), headerValue),
  origin: fc.oneof(fc.constant(undefined), fc.constantFrom('https://attacker.example', 'null')),
  accept: fc.oneof(fc.constant(undefined), headerValue),
  'x-resident-admin': fc.oneof(fc.constant(undefined), fc.constant('1')),
  extra: fc.oneof(fc.constant(undefined), fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,12}$/), headerValue)),
}, { requiredKeys: [] })

const methodArb = fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD')

describe('fuzz: arbitrary requests against the examples and filters', () => {
  let t: TestServer
  let base: URL
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  beforeAll(async () => {
    t = await startTestServer({
      config: {
        extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'filters'),
        filters: shipped.filters, extensions: shipped.extensions, requestIdHeader: 'x-request-id', logLevel: 'warn',
      },
    })
    base = new URL(await t.listen())
  })
  afterAll(async () => {
    agent.destroy()
    await t.close()
  })

  it('answers every request with a 2xx or a 4xx JSON error with a request id, in bounded time, and keeps serving', async () => {
    await fc.assert(fc.asyncProperty(methodArb, pathArb, queryArb, headersArb, bodyArb, async (method, p, query, h, b) => {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(h)) {
        if (v === undefined) continue
        if (k === 'extra') headers[(v as [string, string])[0]] = (v as [string, string])[1]
        else headers[k] = v as string
      }
      const withBody = method !== 'GET' && method !== 'HEAD' && b.body !== null
      if (withBody && b.type !== null) headers['content-type'] = b.type
      // Node's client sends an OPTIONS or DELETE body without any framing unless told its length,
      // and the server would rightly read those bytes as the start of the next request.
      if (withBody) headers['content-length'] = String(b.body!.length)
      const target = query === '' ? p : `${p}?${query}`
      const r = await send(agent, base, method, target, headers, withBody ? b.body : null)
      const at = `${method} ${target} → ${r.status} ${r.body.toString('utf8', 0, 300)}`
      expect(r.status >= 200 && r.status < 300 || r.status >= 400 && r.status < 500, at).toBe(true)
      if (r.status >= 400 && method !== 'HEAD') {
        expect(String(r.headers['content-type']), at).toMatch(/^application\/json/)
        const body = JSON.parse(r.body.toString('utf8')) as { error?: { code?: unknown; requestId?: unknown } }
        expect(typeof body.error?.code, at).toBe('string')
        expect(typeof body.error?.requestId, at).toBe('string')
      }
    }), { seed: 1212, numRuns: 300, endOnFailure: true })

    const good = await send(agent, base, 'GET', '/hello/greet?name=after', {}, null)
    expect(good.status).toBe(200)
    expect(JSON.parse(good.body.toString())).toEqual({ hello: 'after' })
  })
})
