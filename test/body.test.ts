import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

describe('request bodies and limits', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      config: { bodyLimit: 1024 },
      extensions: {
        'echo.ts': `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  static commands = { png: { accepts: ['image/png'] } }
  body(_p, req) {
    return { type: req.contentType, body: req.body instanceof Uint8Array ? 'bytes:' + req.body.length : req.body, raw: req.rawBody.length }
  }
  png(_p, req) { return { png: req.body.length } }
}`,
      },
    })
  })
  afterAll(() => t.close())

  it('gives the command parsed and raw bodies', async () => {
    const json = await t.inject({ method: 'POST', url: '/echo/body', payload: { a: 1 } })
    expect(json.json()).toEqual({ type: 'application/json', body: { a: 1 }, raw: 7 })
    const text = await t.inject({ method: 'POST', url: '/echo/body', payload: 'hi', headers: { 'content-type': 'text/plain; charset=utf-8' } })
    expect(text.json()).toEqual({ type: 'text/plain', body: 'hi', raw: 2 })
    const bytes = await t.inject({ method: 'POST', url: '/echo/body', payload: Buffer.from([1, 2, 3]), headers: { 'content-type': 'application/octet-stream' } })
    expect(bytes.json()).toEqual({ type: 'application/octet-stream', body: 'bytes:3', raw: 3 })
  })

  it('413s a body over the limit', async () => {
    const r = await t.inject({ method: 'POST', url: '/echo/body', payload: 'x'.repeat(2048), headers: { 'content-type': 'text/plain' } })
    expect(r.statusCode).toBe(413)
    expect(r.json().error.code).toBe('RES_ERR_BODY_TOO_LARGE')
    expect(r.json().error.requestId).toBeTruthy()
  })

  it('400s malformed JSON', async () => {
    const r = await t.inject({ method: 'POST', url: '/echo/body', payload: '{"a":', headers: { 'content-type': 'application/json' } })
    expect(r.statusCode).toBe(400)
    expect(r.json().error.code).toBe('RES_ERR_BAD_BODY')
  })

  it('415s a content type nobody accepts, and takes one a command declares', async () => {
    const r = await t.inject({ method: 'POST', url: '/echo/body', payload: 'x', headers: { 'content-type': 'image/png' } })
    expect(r.statusCode).toBe(415)
    expect(r.json().error.code).toBe('RES_ERR_UNSUPPORTED_MEDIA_TYPE')
    const ok = await t.inject({ method: 'POST', url: '/echo/png', payload: Buffer.from('abcd'), headers: { 'content-type': 'image/png' } })
    expect(ok.json()).toEqual({ png: 4 })
  })

  it('keeps serving after every rejection', async () => {
    expect((await t.inject({ method: 'POST', url: '/echo/body', payload: { ok: true } })).statusCode).toBe(200)
  })
})
