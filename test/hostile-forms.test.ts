import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseForm } from '../src/dispatch/body.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  count(params) { return { keys: Object.keys(params).length, a: Array.isArray(params.a) ? params.a.length : params.a ?? null } }
}`

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

describe('urlencoded forms and query strings', () => {
  let t: TestServer
  beforeAll(async () => { t = await startTestServer({ extensions: { 'echo.ts': ECHO }, config: { parameterLimit: 50 } }) })
  afterAll(() => t.close())

  it('collects a repeated key into one list', async () => {
    const body = Array.from({ length: 50 }, (_, i) => `a=${i}`).join('&')
    const r = await t.inject({ method: 'POST', url: '/echo/count', headers: FORM, payload: body })
    expect(r.json()).toEqual({ keys: 1, a: 50 })
  })

  it('answers more parameters than parameterLimit with a 400 naming the limit (body and query alike)', async () => {
    const body = Array.from({ length: 51 }, (_, i) => `a=${i}`).join('&')
    for (const r of [
      await t.inject({ method: 'POST', url: '/echo/count', headers: FORM, payload: body }),
      await t.inject({ method: 'GET', url: `/echo/count?${body}` }),
    ]) {
      expect(r.statusCode).toBe(400)
      expect(r.json().error.code).toBe('RES_ERR_TOO_MANY_PARAMETERS')
      expect(r.json().error.message).toContain('parameterLimit')
      expect(r.json().error.requestId).toBeTruthy()
    }
    // Empty pieces are not parameters.
    expect((await t.inject({ method: 'GET', url: `/echo/count?${'&'.repeat(200)}a=1` })).json()).toEqual({ keys: 1, a: '1' })
  })

  it('parses like URLSearchParams, repeats in order', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', '__proto__', 'constructor', 'x y'), fc.string()), { maxLength: 30 }), (pairs) => {
      const text = new URLSearchParams(pairs).toString()
      const expected = new Map<string, string[]>()
      for (const [k, v] of new URLSearchParams(text)) expected.set(k, [...(expected.get(k) ?? []), v])
      const got = parseForm(text)
      expect(Object.keys(got).sort()).toEqual([...expected.keys()].sort())
      for (const [k, vs] of expected) expect(Object.getOwnPropertyDescriptor(got, k)!.value).toEqual(vs.length === 1 ? vs[0] : vs)
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype)
    }), { seed: 12, numRuns: 300 })
  })
})
