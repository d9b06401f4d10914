import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// Filters run in this process (vm in the main context), so they can record into a global.
type Rec = string[]
const g = globalThis as { __rec?: Rec }
function rec(): Rec { return (g.__rec = []) }

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  index(_p, request) { return { url: request.url, user: request.user ?? null, query: request.query } }
  hello() { return { hello: 'world' } }
  denied() { throw new (require('resident-host').HttpError)(403, 'no') }
}`
const OTHER = `import { Extension } from 'resident-host'
export default class Other extends Extension { index(_p, request) { return { other: true, query: request.query } } }`

/** A filter that records every notification it gets, tagged with its name. */
function recorder(tag: string, opts: { priority?: string; paths?: string } = {}): string {
  return `import { Filter } from 'resident-host'
const r = (e) => globalThis.__rec.push('${tag}:' + e)
export default class R extends Filter {
  ${opts.priority ? `static priority = '${opts.priority}'` : ''}
  ${opts.paths ? `static paths = ${opts.paths}` : ''}
  onRequest() { r('onRequest') }
  onUrlMap() { r('onUrlMap') }
  onAuthenticate() { r('onAuthenticate') }
  onAccessDenied() { r('onAccessDenied') }
  onSendResponse() { r('onSendResponse') }
  onEndOfRequest(_q, end) { r('onEndOfRequest:' + end.outcome) }
  onLog() { r('onLog') }
}`
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

describe('filter notifications', () => {
  it('runs every notification in request order, and onAccessDenied only for 401/403', async () => {
    const r = rec()
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'a.ts': recorder('a') } })
    const res = await t.inject('/echo/hello')
    expect(res.statusCode).toBe(200)
    await until(() => r.includes('a:onLog'))
    expect(r).toEqual(['a:onRequest', 'a:onUrlMap', 'a:onAuthenticate', 'a:onSendResponse', 'a:onEndOfRequest:ok', 'a:onLog'])
    r.length = 0
    expect((await t.inject('/echo/denied')).statusCode).toBe(403)
    await until(() => r.includes('a:onLog'))
    expect(r).toEqual(['a:onRequest', 'a:onUrlMap', 'a:onAuthenticate', 'a:onAccessDenied', 'a:onSendResponse', 'a:onEndOfRequest:client-error', 'a:onLog'])
  })

  it('orders by priority, then config order, then name; the response side runs in reverse', async () => {
    const r = rec()
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'a.ts': recorder('a', { priority: 'low' }), 'b.ts': recorder('b'), 'c.ts': recorder('c', { priority: 'high' }), 'd.ts': recorder('d'), 'e.ts': recorder('e') },
      config: { filters: { order: ['e', 'd'] } },
    })
    expect(t.server.filters.describe().map((l) => l.split(' ')[1])).toEqual(['c', 'e', 'd', 'b', 'a'])
    await t.inject('/echo/hello')
    await until(() => r.filter((x) => x.endsWith(':onLog')).length === 5)
    const of = (e: string) => r.filter((x) => x.endsWith(':' + e)).map((x) => x[0])
    expect(of('onRequest')).toEqual(['c', 'e', 'd', 'b', 'a'])
    expect(of('onAuthenticate')).toEqual(['c', 'e', 'd', 'b', 'a'])
    expect(of('onSendResponse')).toEqual(['a', 'b', 'd', 'e', 'c'])
    expect(of('onLog')).toEqual(['c', 'e', 'd', 'b', 'a'])
  })

  it('sees 404s and errors, so the access log is complete', async () => {
    const r = rec()
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'a.ts': recorder('a') } })
    expect((await t.inject('/nope/')).statusCode).toBe(404)
    expect((await t.inject('/a/b/c/d')).statusCode).toBe(404)
    expect((await t.inject('/echo/missing')).statusCode).toBe(404)
    await until(() => r.filter((x) => x === 'a:onLog').length === 3)
    expect(r.filter((x) => x === 'a:onEndOfRequest:client-error')).toHaveLength(3)
    expect(r.filter((x) => x === 'a:onSendResponse')).toHaveLength(3)
  })
})

describe('answers', () => {
  const answering = (body: string) => `import { Filter, HANDLED } from 'resident-host'
export default class A extends Filter { static priority = 'high'
  ${body}
}`
  it('a Response finishes the request now; the command does not run, send-side filters still see it', async () => {
    const r = rec()
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'a.ts': answering(`onRequest(req) { if (req.path === '/echo/hello') return new Response('teapot', { status: 418, headers: { 'x-by': 'a' } }) }`), 'b.ts': recorder('b') },
    })
    const res = await t.inject('/echo/hello')
    expect(res.statusCode).toBe(418)
    expect(res.body).toBe('teapot')
    expect(res.headers['x-by']).toBe('a')
    await until(() => r.includes('b:onLog'))
    expect(r).toEqual(['b:onSendResponse', 'b:onEndOfRequest:client-error', 'b:onLog'])
  })

  it('HANDLED skips the remaining filters of that notification only', async () => {
    const r = rec()
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'a.ts': answering(`onRequest() { return HANDLED }`), 'b.ts': recorder('b') },
    })
    expect((await t.inject('/echo/hello')).json()).toEqual({ hello: 'world' })
    await until(() => r.includes('b:onLog'))
    expect(r).not.toContain('b:onRequest')
    expect(r).toContain('b:onAuthenticate')
    expect(r).toContain('b:onSendResponse')
  })

  it('an async answer works like a sync one', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'a.ts': answering(`async onAuthenticate(req) { await new Promise((r) => setTimeout(r, 5)); req.user = { name: 'ann' } }`) },
    })
    expect((await t.inject('/echo/')).json()).toMatchObject({ user: { name: 'ann' } })
  })

  it('an HttpError thrown in onAuthenticate answers with its status and headers; onAccessDenied may reshape it', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: {
        'auth.ts': answering(`onAuthenticate(req) { if (req.headers.authorization !== 'ok') throw new (require('resident-host').HttpError)(401, 'who are you?', { headers: { 'www-authenticate': 'Basic realm="x"' } }) }`),
        'shape.ts': `import { Filter } from 'resident-host'
export default class S extends Filter { onAccessDenied(req, res) { const j = res.json(); res.setHeader('x-denied', j.error.code); if (req.headers.accept === 'text/html') { res.body = '<h1>Please log in</h1>'; res.setHeader('content-type', 'text/html') } } }`,
      },
    })
    const denied = await t.inject('/echo/')
    expect(denied.statusCode).toBe(401)
    expect(denied.headers['www-authenticate']).toBe('Basic realm="x"')
    expect(denied.headers['x-denied']).toBe('HTTP_401')
    expect(denied.json().error).toMatchObject({ message: 'who are you?', requestId: expect.any(String) })
    const html = await t.inject({ url: '/echo/', headers: { accept: 'text/html' } })
    expect(html.statusCode).toBe(401)
    expect(html.body).toBe('<h1>Please log in</h1>')
    expect(html.headers['content-length']).toBe(String(html.body.length))
    expect((await t.inject({ url: '/echo/', headers: { authorization: 'ok' } })).statusCode).toBe(200)
  })

  const throwing = (event: string) => `import { Filter } from 'resident-host'
export default class T extends Filter { ${event}(req) { if (req.url.includes('boom')) throw new Error('kaboom in ${event}') } }`

  for (const event of ['onRequest', 'onUrlMap', 'onAuthenticate', 'onSendResponse']) {
    it(`a throw in ${event} is a 500 with the request id; other requests are unaffected`, async () => {
      t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 't.ts': throwing(event) } })
      const res = await t.inject('/echo/hello?boom')
      expect(res.statusCode).toBe(500)
      expect(res.json().error).toMatchObject({ code: 'RES_ERR_FILTER_FAILED', requestId: res.headers['x-request-id'] ?? expect.any(String) })
      expect(res.json().error.message).not.toContain('kaboom')
      expect(t.logs.some((l) => l.filter === 't' && l.notification === event)).toBe(true)
      expect((await t.inject('/echo/hello')).json()).toEqual({ hello: 'world' })
    })
  }

  it('a throw in onAccessDenied is a 500 with the request id', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 't.ts': throwing('onAccessDenied') } })
    const res = await t.inject('/echo/denied?boom')
    expect(res.statusCode).toBe(500)
    expect(res.json().error.code).toBe('RES_ERR_FILTER_FAILED')
  })

  for (const event of ['onEndOfRequest', 'onLog']) {
    it(`a throw in ${event} is logged with the filter's name; the response and the next filter are unaffected`, async () => {
      const r = rec()
      t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 't.ts': throwing(event), 'z.ts': recorder('z') } })
      const res = await t.inject('/echo/hello?boom')
      expect(res.statusCode).toBe(200)
      await until(() => t!.logs.some((l) => l.filter === 't' && l.notification === event))
      await until(() => r.includes('z:onLog'))
      expect((await t.inject('/echo/hello')).statusCode).toBe(200)
    })
  }

  it('an async filter that never finishes gets the command deadline (504), not a hung request', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'a.ts': answering(`onAuthenticate(req) { if (req.url.includes('hang')) return new Promise(() => {}) }`) },
      config: { requestTimeout: 200 },
    })
    const res = await t.inject('/echo/hello?hang')
    expect(res.statusCode).toBe(504)
    expect(res.json().error.code).toBe('RES_ERR_TIMEOUT')
    expect((await t.inject('/echo/hello')).statusCode).toBe(200)
  })

  it('an unsupported answer is a filter failure, not a silent pass', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'a.ts': answering(`onRequest() { return 42 }`) } })
    expect((await t.inject('/echo/hello')).statusCode).toBe(500)
  })
})

describe('onUrlMap', () => {
  const mapper = `import { Filter } from 'resident-host'
export default class M extends Filter {
  async onUrlMap(_req, url) {
    await new Promise((r) => setTimeout(r, 1))
    if (url.startsWith('/old/')) return '/other/?' + url.split('?')[1]
    if (url.startsWith('/gone')) return '/missing/x'
    if (url.startsWith('/bad')) return 'http://evil/'
  }
}`
  it('dispatches to another extension (async), with the mapped query; the command sees the mapped URL', async () => {
    const r = rec()
    t = await startTestServer({ extensions: { 'echo.ts': ECHO, 'other.ts': OTHER }, filters: { 'm.ts': mapper, 'z.ts': recorder('z', { paths: `['/other/']` }) } })
    const res = await t.inject('/old/thing?x=1')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ other: true, query: { x: '1' } })
    // z is limited to /other/ and matches the mapped URL from onAuthenticate on
    await until(() => r.includes('z:onLog'))
    expect(r).not.toContain('z:onRequest')
    expect(r).toContain('z:onAuthenticate')
  })
  it('maps to a 404 and rejects a URL that is not a path', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'm.ts': mapper } })
    const gone = await t.inject('/gone')
    expect(gone.statusCode).toBe(404)
    expect(gone.json().error.code).toBe('RES_ERR_NOT_FOUND')
    expect((await t.inject('/bad')).statusCode).toBe(500)
  })
})

describe('onSendResponse', () => {
  it('transforms a JSON body and a streamed body', async () => {
    t = await startTestServer({
      extensions: {
        'echo.ts': ECHO,
        'stream.ts': `import { Extension } from 'resident-host'
export default class S extends Extension { async *index() { yield 'one\\n'; await new Promise((r) => setTimeout(r, 5)); yield 'two\\n' } }`,
      },
      filters: {
        'x.ts': `import { Filter } from 'resident-host'
import { Transform } from 'node:stream'
export default class X extends Filter {
  onSendResponse(req, res) {
    const j = res.json()
    if (j && typeof j === 'object' && !Array.isArray(j)) { res.body = JSON.stringify({ ...j, filtered: true }); return }
    if (res.body && typeof res.body.pipe === 'function') {
      res.body = res.body.pipe(new Transform({ transform(chunk, _e, cb) { cb(null, String(chunk).toUpperCase()) } }))
    }
  }
}`,
      },
    })
    const json = await t.inject('/echo/hello')
    expect(json.json()).toEqual({ hello: 'world', filtered: true })
    expect(json.headers['content-length']).toBe(String(Buffer.byteLength(json.body)))
    const streamed = await t.inject('/stream/')
    expect(streamed.statusCode).toBe(200)
    expect(streamed.body).toBe('ONE\nTWO\n')
  })

  it('a body of an unsupported type is a filter failure (500), not a crash or a loop', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'x.ts': `import { Filter } from 'resident-host'
export default class X extends Filter { onSendResponse(req, res) { res.body = { not: 'allowed' } } }` },
    })
    const res = await t.inject('/echo/hello')
    expect(res.statusCode).toBe(500)
    expect(res.json().error.code).toBe('RES_ERR_FILTER_FAILED')
  })

  it('can change the status and replace the response with a Response', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'x.ts': `import { Filter } from 'resident-host'
export default class X extends Filter {
  onSendResponse(req, res) {
    if (req.path === '/echo/hello') res.status = 202
    if (res.status === 404) return new Response('not here', { status: 410, headers: { 'content-type': 'text/plain' } })
  }
}` },
    })
    expect((await t.inject('/echo/hello')).statusCode).toBe(202)
    const gone = await t.inject('/nothing/')
    expect(gone.statusCode).toBe(410)
    expect(gone.body).toBe('not here')
  })
})

describe('paths, identity, log, abort', () => {
  it('a filter limited to paths runs only for them', async () => {
    const r = rec()
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'p.ts': recorder('p', { paths: `['/echo/*', /^\\/x\\//]` }) } })
    await t.inject('/other/')
    await t.inject('/echo/a/b')
    await new Promise((res) => setTimeout(res, 50))
    expect(r).toEqual([])
    await t.inject('/echo/hello')
    await until(() => r.includes('p:onLog'))
    expect(r.filter((x) => x === 'p:onRequest')).toHaveLength(1)
  })

  it('onLog gets a structured entry a filter can enrich or suppress', async () => {
    const entries: unknown[] = []
    ;(globalThis as { __entries?: unknown[] }).__entries = entries
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: {
        'a.ts': `import { Filter } from 'resident-host'
export default class A extends Filter { static priority = 'high'
  onAuthenticate(req) { req.user = { name: 'ann' } }
  onLog(req, e) { if (req.path === '/echo/health') return false; e.region = 'eu' } }`,
        'b.ts': `import { Filter } from 'resident-host'
export default class B extends Filter { onLog(req, e) { globalThis.__entries.push(e) } }`,
      },
    })
    await t.inject({ url: '/echo/hello?x=1', headers: { 'user-agent': 'vitest' } })
    await t.inject('/echo/health')
    await until(() => entries.length >= 1)
    await new Promise((res) => setTimeout(res, 50))
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ method: 'GET', url: '/echo/hello?x=1', status: 200, outcome: 'ok', userAgent: 'vitest', user: { name: 'ann' }, region: 'eu', requestId: expect.any(String) })
  })

  it('sees an aborted request in onEndOfRequest', async () => {
    const ends: Array<{ outcome: string; aborted: boolean }> = []
    ;(globalThis as { __ends?: unknown[] }).__ends = ends
    t = await startTestServer({
      extensions: { 'slow.ts': `import { Extension } from 'resident-host'
export default class Slow extends Extension { async *index(_p, req) { yield 'first\\n'; await new Promise((r) => { const t = setTimeout(r, 20000); req.signal.addEventListener('abort', () => { clearTimeout(t); r() }) }) } }` },
      filters: { 'e.ts': `import { Filter } from 'resident-host'
export default class E extends Filter { onEndOfRequest(req, end) { globalThis.__ends.push(end) } }` },
    })
    const base = new URL(await t.listen())
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: base.hostname, port: base.port, path: '/slow/' }, (res) => {
        res.once('data', () => { req.destroy(); resolve() })
      })
      req.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e) })
    })
    await until(() => ends.length === 1)
    expect(ends[0]).toMatchObject({ outcome: 'aborted', aborted: true })
  })

  it('gives each filter its config section and logger', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'cfg.ts': `import { Filter } from 'resident-host'
export default class C extends Filter { onSendResponse(req, res) { this.host.log.info({}, 'cfg filter'); res.setHeader('x-greeting', this.host.config.greeting) } }` },
      config: { filters: { modules: { cfg: { config: { greeting: 'hi' } } } } },
    })
    const res = await t.inject('/echo/hello')
    expect(res.headers['x-greeting']).toBe('hi')
    expect(t.logs.some((l) => l.msg === 'cfg filter' && l.filter === 'cfg')).toBe(true)
  })

  it('onRequest may change request headers; the command sees the change', async () => {
    t = await startTestServer({
      extensions: { 'hdr.ts': `import { Extension } from 'resident-host'
export default class H extends Extension { index(_p, request) { return { tenant: request.headers['x-tenant'] ?? null, gone: request.headers['x-secret'] ?? null } } }` },
      filters: { 'h.ts': `import { Filter } from 'resident-host'
export default class H extends Filter { onRequest(req) { req.headers['x-tenant'] = 'acme'; delete req.headers['x-secret'] } }` },
    })
    expect((await t.inject({ url: '/hdr/', headers: { 'x-secret': 's3cret' } })).json()).toEqual({ tenant: 'acme', gone: null })
  })

  it('precomputes one step list per notification: a notification no filter implements has none', async () => {
    t = await startTestServer({
      extensions: { 'echo.ts': ECHO },
      filters: { 'only-log.ts': `import { Filter } from 'resident-host'
export default class L extends Filter { onLog() {} }` },
    })
    const chain = t.server.filters.current
    expect([chain.onRequest, chain.onUrlMap, chain.onAuthenticate, chain.onAccessDenied, chain.onSendResponse, chain.onEndOfRequest].map((s) => s.length)).toEqual([0, 0, 0, 0, 0, 0])
    expect(chain.onLog).toHaveLength(1)
    expect((await t.inject('/echo/hello')).json()).toEqual({ hello: 'world' })
  })

  it('a disabled filter is not loaded', async () => {
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'a.ts': recorder('a') }, config: { filters: { modules: { a: { enabled: false } } } } })
    expect(t.server.filters.describe()).toEqual([])
  })
})
