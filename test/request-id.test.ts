import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isValidRequestId } from '../src/sdk/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  id(_p, req) { return { id: req.id } }
}`

describe('requestIdHeader', () => {
  let t: TestServer
  beforeAll(async () => { t = await startTestServer({ extensions: { 'echo.ts': ECHO }, config: { requestIdHeader: 'x-request-id' } }) })
  afterAll(() => t.close())

  it('a valid incoming id becomes the request id: the command, error bodies and logs all see it', async () => {
    expect((await t.inject({ url: '/echo/id', headers: { 'x-request-id': 'trace-42.a:b' } })).json()).toEqual({ id: 'trace-42.a:b' })
    const r = await t.inject({ url: '/nothing/', headers: { 'x-request-id': 'trace-43' } })
    expect(r.statusCode).toBe(404)
    expect(r.json().error.requestId).toBe('trace-43')
  })

  it('an invalid or repeated one is ignored for Resident’s own', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'new\nline', '']) {
      const id = (await t.inject({ url: '/echo/id', headers: { 'x-request-id': bad } })).json().id as string
      expect(id).not.toBe(bad)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
    }
    const twice = await t.inject({ url: '/echo/id', headers: { 'x-request-id': ['a', 'b'] } })
    expect(twice.json().id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
  })

  it('without the setting, an incoming id is not used', async () => {
    const plain = await startTestServer({ extensions: { 'echo.ts': ECHO } })
    try {
      expect((await plain.inject({ url: '/echo/id', headers: { 'x-request-id': 'trace-44' } })).json().id).not.toBe('trace-44')
    } finally {
      await plain.close()
    }
  })
})

describe('isValidRequestId (exported for filters)', () => {
  const ok = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-')
  it('accepts 1–128 characters of the plain alphabet', () => {
    fc.assert(fc.property(fc.array(ok, { minLength: 1, maxLength: 128 }), (cs) => isValidRequestId(cs.join(''))))
  })
  it('rejects anything else: empty, too long, any other character, non-strings', () => {
    fc.assert(fc.property(fc.array(ok, { minLength: 129, maxLength: 300 }), (cs) => !isValidRequestId(cs.join(''))))
    fc.assert(fc.property(fc.string(), fc.string(), fc.string({ minLength: 1, maxLength: 1 }).filter((c) => !/[A-Za-z0-9._:-]/.test(c)),
      (a, b, bad) => !isValidRequestId(a + bad + b)))
    for (const v of ['', undefined, null, 42, ['a'], 'a\nb', 'a b']) expect(isValidRequestId(v)).toBe(false)
  })
})
