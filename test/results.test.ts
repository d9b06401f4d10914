import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const RESULTS = `import { Extension, HttpError } from 'resident-host'
import { Readable } from 'node:stream'
export default class R extends Extension {
  obj() { return { a: 1 } }
  arr() { return [1, 2] }
  str() { return 'plain' }
  num() { return 42 }
  nul() { return null }
  bytes() { return new Uint8Array([104, 105]) }
  nothing() {}
  readable() { return Readable.from(['a', 'b', 'c']) }
  async *iter() { yield 'x'; yield 'y' }
  web() { return new Response('made', { status: 201, headers: { 'x-custom': 'yes', 'content-type': 'text/x-made' } }) }
  webCookies() { const h = new Headers(); h.append('set-cookie', 'a=1'); h.append('set-cookie', 'b=2'); return new Response(null, { status: 204, headers: h }) }
  teapot() { throw new HttpError(418, 'short and stout', { code: 'TEAPOT', data: { spout: true } }) }
  plain() { throw new Error('secret detail') }
  async rejects() { await Promise.resolve(); throw new TypeError('async detail') }
  fn() { return () => 1 }
  circular() { const o = {}; o.self = o; return o }
}`

describe('results become responses', () => {
  let t: TestServer
  beforeAll(async () => { t = await startTestServer({ extensions: { 'r.ts': RESULTS } }) })
  afterAll(() => t.close())

  it('object and array → JSON; number and null → JSON', async () => {
    const o = await t.inject('/r/obj')
    expect(o.headers['content-type']).toMatch(/^application\/json/)
    expect(o.json()).toEqual({ a: 1 })
    expect((await t.inject('/r/arr')).json()).toEqual([1, 2])
    expect((await t.inject('/r/num')).json()).toBe(42)
    expect((await t.inject('/r/nul')).body).toBe('null')
  })

  it('string → text/plain; bytes → octet-stream; undefined → 204', async () => {
    const s = await t.inject('/r/str')
    expect(s.headers['content-type']).toMatch(/^text\/plain/)
    expect(s.body).toBe('plain')
    const b = await t.inject('/r/bytes')
    expect(b.headers['content-type']).toBe('application/octet-stream')
    expect(b.body).toBe('hi')
    const n = await t.inject('/r/nothing')
    expect(n.statusCode).toBe(204)
    expect(n.body).toBe('')
  })

  it('Readable and async iterables are streamed', async () => {
    expect((await t.inject('/r/readable')).body).toBe('abc')
    expect((await t.inject('/r/iter')).body).toBe('xy')
  })

  it('a web Response gives exactly its status, headers and body', async () => {
    const r = await t.inject('/r/web')
    expect(r.statusCode).toBe(201)
    expect(r.headers['x-custom']).toBe('yes')
    expect(r.headers['content-type']).toBe('text/x-made')
    expect(r.body).toBe('made')
    const c = await t.inject('/r/webCookies')
    expect(c.statusCode).toBe(204)
    expect(c.headers['set-cookie']).toEqual(['a=1', 'b=2'])
  })

  it('HttpError → its status, code and data', async () => {
    const r = await t.inject('/r/teapot')
    expect(r.statusCode).toBe(418)
    expect(r.json().error).toMatchObject({ code: 'TEAPOT', message: 'short and stout', data: { spout: true } })
    expect(r.json().error.requestId).toBeTruthy()
  })

  it('any other throw or rejection → 500 without details, and the host stays up', async () => {
    for (const url of ['/r/plain', '/r/rejects']) {
      const r = await t.inject(url)
      expect(r.statusCode).toBe(500)
      const { error } = r.json()
      expect(error.code).toBe('RES_ERR_COMMAND_FAILED')
      expect(error.message).toBe('The command failed')
      expect(error.requestId).toBe(r.headers['x-request-id'] ?? error.requestId)
      expect(JSON.stringify(error)).not.toContain('detail')
      expect(error.stack).toBeUndefined()
    }
    expect((await t.inject('/r/obj')).statusCode).toBe(200)
  })

  it('results that cannot be sent → 500 RES_ERR_BAD_RESULT', async () => {
    for (const url of ['/r/fn', '/r/circular']) {
      const r = await t.inject(url)
      expect(r.statusCode).toBe(500)
      expect(r.json().error.code).toBe('RES_ERR_BAD_RESULT')
    }
  })
})

describe('development mode', () => {
  let t: TestServer
  beforeAll(async () => { t = await startTestServer({ config: { development: true }, extensions: { 'r.ts': RESULTS } }) })
  afterAll(() => t.close())

  it('shows the message and a stack that points at the TypeScript source', async () => {
    const r = await t.inject('/r/plain')
    const { error } = r.json()
    expect(error.message).toBe('secret detail')
    expect(error.stack).toMatch(/extensions\/r\.ts:16:19\)/)
  })
})
