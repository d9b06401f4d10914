// The bounded-cost fuzz: generated requests over raw sockets, pipelined, cut and abandoned, against
// the example extensions. Shared by test/fuzz-bounded.test.ts (a few seconds, fixed seed) and
// bench/fuzz.ts (the long run).
import fc from 'fast-check'
import { connect, parseResponses, type RawResponse } from './raw.ts'

export interface FuzzRequest { method: string; bytes: string }
export interface FuzzConnection {
  requests: FuzzRequest[]
  /** 'read': wait for every answer; 'leave': hang up after `after` ms, answered or not. */
  mode: 'read' | 'leave'
  after: number
  /** Send the last request only in part (a client that stops mid-request). */
  cut: boolean
}

const numberish = fc.oneof(
  fc.integer({ min: -1e9, max: 1e9 }).map(String),
  fc.double({ noNaN: false }).map(String),
  fc.tuple(fc.integer({ min: 1, max: 6000 }), fc.constantFrom('x', '.', 'e', '..', 'e+', '1.1.', '', ' ', '%00')).map(([n, t]) => '9'.repeat(n) + t),
  fc.constantFrom('', '-', '+', '.', 'e5', '1e999', 'NaN', 'Infinity', '0x10', '١٢', '1_000', ' 1 ', '%zz', '%'),
)
const word = fc.string({ maxLength: 40 }).map(encodeURIComponent)
const query = fc.array(fc.oneof(
  numberish.map((v) => `a=${v}`), numberish.map((v) => `b=${v}`), numberish.map((v) => `key=${v}`),
  word.map((v) => `name=${v}`), word.map((v) => `text=${v}`), word.map((v) => `${v}=${v}`),
  fc.integer({ min: -1, max: 6 }).map((n) => `chunks=${n}`), fc.integer({ min: -1, max: 30 }).map((n) => `delay=${n}`),
), { maxLength: 4 }).map((q) => (q.length ? `?${q.join('&')}` : ''))

/** A stream that would run 495 s: its connections are always abandoned. */
const SLOW = '/stream/?chunks=100&delay=5000'

const path = fc.constantFrom(
  '/hello/greet', '/hello/', '/calc/add', '/calc/div', '/counter/increment', '/counter/value', '/cache/get', '/cache/stats',
  '/markdown/render', '/stream/', '/secret/', '/nope/x', '/calc/add/extra/segments', '/_resident/status', '/_resident/nothing',
  '/secret/%zz', '/hello/%', '/hello/%e0%a4%a', '/calc/%2e%2e', '//calc/add', '/CALC/ADD', '/calc/constructor', '/calc/__proto__',
)
const target = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(path, query).map(([p, q]) => p + q) },
  { weight: 1, arbitrary: fc.tuple(path, query).map(([p, q]) => `http://localhost${p}${q}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'ftp://x/hello/greet', 'hello/greet', '/\u00e9', '/hello/greet#frag') },
  { weight: 1, arbitrary: fc.constant(SLOW) },
)
const method = fc.constantFrom('GET', 'GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'FOO')

const deep = (n: number, open: string, close: string, leaf = '1') => open.repeat(n) + leaf + close.repeat(n)
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ type: 'application/json', text: JSON.stringify(v) ?? 'null' })),
  fc.record({ a: numberish, b: numberish }).map((v) => ({ type: 'application/json', text: JSON.stringify(v) })),
  fc.integer({ min: 10, max: 20_000 }).map((n) => ({ type: 'application/json', text: `{"a":${deep(n, '{"a":', '}')}}` })),
  fc.integer({ min: 10, max: 200_000 }).map((n) => ({ type: 'application/json', text: deep(n, '[', ']', '') })),
  fc.integer({ min: 10, max: 300_000 }).map((n) => ({ type: 'application/json', text: `[${Array(n).fill('[]').join(',')}]` })),
  fc.string({ maxLength: 200 }).map((s) => ({ type: 'application/json', text: `{"a":${s}` })),
  fc.integer({ min: 1, max: 20_000 }).map((n) => ({ type: 'application/json', text: JSON.stringify({ text: '!*a'.repeat(n).slice(0, 49_000) }) })),
  word.map((w) => ({ type: 'application/x-www-form-urlencoded', text: `a=${w}&a=2&b=${w}` })),
  fc.tuple(fc.constantFrom('text/plain', 'application/octet-stream', 'application/x-weird', 'application/ld+json'), fc.string({ maxLength: 300 })).map(([type, text]) => ({ type, text })),
)
const headers = fc.record({
  host: fc.oneof({ weight: 12, arbitrary: fc.constant('Host: localhost\r\n') }, { weight: 1, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constant('Host: evil.example\r\n') }),
  expect: fc.oneof({ weight: 15, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('Expect: foo\r\n', 'Expect: 100-continue\r\n') }),
  extra: fc.constantFrom('', '', '', 'Authorization: Basic ZGVtbzpkZW1v\r\n', 'Origin: http://evil.example\r\n', 'Content-Length: abc\r\n'),
})

const request: fc.Arbitrary<FuzzRequest> = fc.tuple(method, target, headers, fc.option(body, { nil: undefined })).map(([m, t, h, b]) => {
  const head = `${m} ${t} HTTP/1.1\r\n${h.host}${h.expect}${h.extra}`
  if (b === undefined || m === 'GET' || m === 'HEAD' || m === 'CONNECT' || h.extra.startsWith('Content-Length')) {
    return { method: m, bytes: `${head}\r\n` }
  }
  return { method: m, bytes: `${head}Content-Type: ${b.type}\r\nContent-Length: ${Buffer.byteLength(b.text)}\r\n\r\n${b.text}` }
})

export const fuzzConnection: fc.Arbitrary<FuzzConnection> = fc.record({
  requests: fc.array(request, { minLength: 1, maxLength: 6 }),
  mode: fc.constantFrom('read', 'read', 'leave') as fc.Arbitrary<'read' | 'leave'>,
  after: fc.integer({ min: 0, max: 150 }),
  cut: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
})

/** The connections of one run: the same for the same seed. */
export function fuzzConnections(seed: number, count: number): FuzzConnection[] {
  return fc.sample(fuzzConnection, { seed, numRuns: count })
}

export interface ConnectionResult { responses: RawResponse[]; problems: string[]; requests: number }

// Statuses a client fault may get: never a 5xx, except the limits' 503s.
const LIMIT_CODES = new Set(['RES_ERR_PIPELINE_LIMIT', 'RES_ERR_OVERLOADED'])

/** Runs one connection and checks every answer it got. */
export async function runConnection(base: string, c: FuzzConnection): Promise<ConnectionResult> {
  const s = await connect(base)
  const chunks: Buffer[] = []
  let closed = false
  s.on('data', (d: Buffer) => chunks.push(d))
  s.on('error', () => {})
  const closedP = new Promise<void>((r) => s.on('close', () => { closed = true; r() }))
  let bytes = c.requests.map((r) => r.bytes).join('')
  if (c.cut) bytes = bytes.slice(0, Math.max(1, bytes.length - 5))
  s.write(bytes)
  const heads = c.requests.map((r) => r.method === 'HEAD')
  const expected = c.cut ? c.requests.length - 1 : c.requests.length
  if (c.mode === 'leave' || c.requests.some((r) => r.bytes.includes(SLOW))) {
    await new Promise((r) => setTimeout(r, c.after))
  } else {
    const deadline = Date.now() + 10_000
    while (!closed && Date.now() < deadline && parseResponses(Buffer.concat(chunks).toString('latin1'), heads).length < expected) {
      await Promise.race([closedP, new Promise((r) => setTimeout(r, 20))])
    }
  }
  s.destroy()
  const responses = parseResponses(Buffer.concat(chunks).toString('latin1'), heads)
  const problems: string[] = []
  responses.forEach((r, i) => {
    const what = `${c.requests[i]?.bytes.slice(0, 80).replace(/\r\n/g, '⏎')} → ${r.status}`
    let error: { code?: unknown; requestId?: unknown } | undefined
    if (r.status >= 400 && !heads[i]) {
      try { error = (JSON.parse(r.body) as { error?: typeof error }).error } catch { /* checked below */ }
      if (typeof error?.code !== 'string' || typeof error.requestId !== 'string') problems.push(`no JSON error body: ${what} ${r.body.slice(0, 80)}`)
    }
    if (r.status >= 500 && !(r.status === 503 && LIMIT_CODES.has(String(error?.code)))) problems.push(`5xx for a client: ${what} ${r.body.slice(0, 120)}`)
  })
  if (c.mode === 'read' && !c.requests.some((r) => r.bytes.includes(SLOW)) && !closed && responses.length < expected) problems.push(`${expected - responses.length} requests unanswered on an open connection: ${c.requests.map((r) => r.bytes.slice(0, 60).replace(/\r\n/g, '⏎')).join(' | ')}`)
  return { responses, problems, requests: c.requests.length }
}

/** Runs connections `parallel` at a time; returns every problem and the statuses seen. */
export async function runFuzz(base: string, connections: FuzzConnection[], parallel = 8): Promise<{ problems: string[]; statuses: Record<number, number>; requests: number; responses: number }> {
  const problems: string[] = []
  const statuses: Record<number, number> = {}
  let requests = 0
  let responses = 0
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < connections.length) {
      const r = await runConnection(base, connections[next++]!)
      problems.push(...r.problems)
      requests += r.requests
      responses += r.responses.length
      for (const x of r.responses) statuses[x.status] = (statuses[x.status] ?? 0) + 1
    }
  }))
  return { problems, statuses, requests, responses }
}
