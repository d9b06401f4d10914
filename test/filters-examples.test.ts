import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// The shipped examples, served exactly as `npm start` serves them (the repository's folders and
// the filters section of its resident.config.json).
const root = path.resolve(import.meta.dirname, '..')
const shipped = JSON.parse(readFileSync(path.join(root, 'resident.config.json'), 'utf8')) as { filters: unknown }

describe('example filters', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      config: { extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'filters'), filters: shipped.filters },
    })
  })
  afterAll(() => t.close())

  it('loads in the documented order', () => {
    expect(t.server.filters.describe().map((l) => l.split(' ')[1])).toEqual(['request-id', 'security-headers', 'legacy-isapi', 'basic-auth', 'access-log'])
  })

  it('legacy-isapi serves /scripts/calc.dll?Add&a=2&b=3 as /calc/add?a=2&b=3', async () => {
    const r = await t.inject('/scripts/calc.dll?Add&a=2&b=3')
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ sum: 5 })
    expect((await t.inject('/scripts/calc.dll?Div&a=1&b=4')).json()).toEqual({ quotient: 0.25 })
    expect((await t.inject('/scripts/nothing.dll?Add&a=1')).statusCode).toBe(404)
  })

  it('basic-auth protects /secret/: 401 with WWW-Authenticate without credentials, 200 with demo/demo', async () => {
    const none = await t.inject('/secret/')
    expect(none.statusCode).toBe(401)
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="/)
    expect(none.json().error).toMatchObject({ code: 'UNAUTHENTICATED', requestId: expect.any(String) })
    const wrong = await t.inject({ url: '/secret/', headers: { authorization: `Basic ${Buffer.from('demo:nope').toString('base64')}` } })
    expect(wrong.statusCode).toBe(401)
    const ok = await t.inject({ url: '/secret/', headers: { authorization: `Basic ${Buffer.from('demo:demo').toString('base64')}` } })
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({ message: 'The secret is safe with you, demo.' })
    // the dispatcher decodes and lower-cases names, so the filter must not be bypassed that way
    for (const url of ['/SECRET/', '/Secret/index', '/%73ecret/', '/secret', '/secret/index?x=1', '/scripts/secret.dll?Index']) {
      expect((await t.inject(url)).statusCode, url).toBe(401)
    }
    // other paths are not protected
    expect((await t.inject('/calc/add?a=1&b=1')).statusCode).toBe(200)
  })

  it('request-id sets x-request-id on every response, honouring a valid incoming one', async () => {
    const own = await t.inject('/calc/add?a=1')
    expect(own.headers['x-request-id']).toEqual(expect.any(String))
    expect((await t.inject({ url: '/calc/add?a=1', headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id']).toBe('abc-123')
    expect((await t.inject({ url: '/calc/add?a=1', headers: { 'x-request-id': 'bad id\u0000' } })).headers['x-request-id']).not.toContain('bad')
    const notFound = await t.inject('/nothing/')
    expect(notFound.headers['x-request-id']).toBe(notFound.json().error.requestId)
  })

  it('security-headers sets the usual headers on every response, errors included', async () => {
    for (const url of ['/calc/add?a=1', '/nothing/', '/secret/']) {
      const r = await t.inject(url)
      expect(r.headers['x-content-type-options']).toBe('nosniff')
      expect(r.headers['referrer-policy']).toBe('no-referrer')
      expect(r.headers['x-frame-options']).toBe('DENY')
    }
  })

  it('access-log writes one line per request, 404s included', async () => {
    const before = t.logs.filter((l) => l.filter === 'access-log').length
    await t.inject('/calc/add?a=1')
    await t.inject('/nothing/')
    const end = Date.now() + 10_000
    while (t.logs.filter((l) => l.filter === 'access-log').length < before + 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    const lines = t.logs.filter((l) => l.filter === 'access-log').slice(before)
    expect(lines.map((l) => (l.access as { status: number }).status)).toEqual([200, 404])
  })
})
