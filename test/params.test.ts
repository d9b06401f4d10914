import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coerceParams } from '../src/modes/params.ts'
import { isResidentError } from '../src/errors.ts'
import { param } from '../src/sdk/params.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const TYPED = `import { Extension, param } from 'resident-host'
export default class Typed extends Extension {
  static commands = {
    all: {
      params: {
        i: param.integer({ min: 0, max: 100 }),
        n: param.number({ default: 1.5 }),
        s: param.string({ default: 'x', maxLength: 5 }),
        b: param.boolean({ default: false }),
        e: param.enum(['red', 'green'], { default: 'red' }),
        list: param.array(param.integer(), { default: [] }),
        opt: param.string({ optional: true }),
      },
      methods: ['GET', 'POST'],
    },
  }
  all(p) { return p }
  raw(p) { return p }
}`

describe('parse map parameters', () => {
  let t: TestServer
  beforeAll(async () => { t = await startTestServer({ extensions: { 'typed.ts': TYPED } }) })
  afterAll(() => t.close())

  it('coerces query strings and fills defaults', async () => {
    const r = await t.inject('/typed/all?i=7&b=true&list=1&list=2&e=green')
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ i: 7, n: 1.5, s: 'x', b: true, e: 'green', list: [1, 2] })
  })

  it('takes parameters from a JSON body, merged over the query', async () => {
    const r = await t.inject({ method: 'POST', url: '/typed/all?i=1&s=q', payload: { i: 9, list: [3] } })
    expect(r.json()).toEqual({ i: 9, n: 1.5, s: 'q', b: false, e: 'red', list: [3] })
  })

  it('takes parameters from a urlencoded body', async () => {
    const r = await t.inject({
      method: 'POST', url: '/typed/all', payload: 'i=4&list=5&list=6&opt=here',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(r.json()).toEqual({ i: 4, n: 1.5, s: 'x', b: false, e: 'red', list: [5, 6], opt: 'here' })
  })

  it.each([
    ['/typed/all', 'i', 'required'],
    ['/typed/all?i=abc', 'i', 'integer'],
    ['/typed/all?i=1.5', 'i', 'integer'],
    ['/typed/all?i=101', 'i', 'max'],
    ['/typed/all?i=-1', 'i', 'min'],
    ['/typed/all?i=1&n=zz', 'n', 'number'],
    ['/typed/all?i=1&s=toolong', 's', 'maxLength'],
    ['/typed/all?i=1&b=maybe', 'b', 'boolean'],
    ['/typed/all?i=1&e=blue', 'e', 'enum'],
    ['/typed/all?i=1&list=x', 'list[0]', 'integer'],
    ['/typed/all?i=1&i=2', 'i', 'single'],
  ])('%s → 400 naming %s and rule %s', async (url, name, rule) => {
    const r = await t.inject(url)
    expect(r.statusCode).toBe(400)
    const { error } = r.json()
    expect(error.code).toBe('RES_ERR_BAD_PARAM')
    expect(error.message).toContain(`"${name}"`)
    expect(error.data).toEqual({ param: name, rule })
    expect(error.requestId).toBeTruthy()
  })

  it('gives undeclared commands the merged parameters as they are', async () => {
    const r = await t.inject({ method: 'POST', url: '/typed/raw?a=1&a=2', payload: { b: { c: true } } })
    expect(r.json()).toEqual({ a: ['1', '2'], b: { c: true } })
  })

  it('keeps a __proto__ key as plain data', async () => {
    const r = await t.inject({ method: 'POST', url: '/typed/raw', payload: '{"__proto__":{"polluted":1}}', headers: { 'content-type': 'application/json' } })
    expect(r.statusCode).toBe(200)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('rejects an invalid parse map at load with a clear reason', async () => {
    t.writeExtension('badmap.ts', `import { Extension } from 'resident-host'
export default class B extends Extension {
  static commands = { go: { params: { x: { type: 'float' } } }, ghost: {} }
  go() { return 1 }
}`)
    const r = await t.inject('/badmap/go')
    expect(r.statusCode).toBe(500)
    expect(r.json().error.code).toBe('RES_ERR_LOAD_FAILED')
    const logged = t.logs.map((l) => l.msg).join('\n')
    expect(logged).toContain('commands.go.params.x.type must be one of')
    expect(logged).toContain('static commands declares "ghost"')
  })
})

describe('coerceParams (property-based)', () => {
  it('round-trips every safe integer written as a query string', () => {
    const spec = { v: param.integer() }
    fc.assert(fc.property(fc.maxSafeInteger(), (n) => coerceParams(spec, { v: String(n) }).v === n))
  })

  it('never throws anything but RES_ERR_BAD_PARAM, whatever the input', () => {
    const spec = {
      i: param.integer({ optional: true }), n: param.number({ optional: true }), b: param.boolean({ optional: true }),
      s: param.string({ optional: true, pattern: '^[a-z]*$' }), e: param.enum(['a', 'b'], { optional: true }),
      l: param.array(param.number(), { optional: true }),
    }
    const value = fc.oneof(fc.string(), fc.array(fc.string()), fc.double(), fc.boolean(), fc.constant(null), fc.object())
    fc.assert(fc.property(fc.record({ i: value, n: value, b: value, s: value, e: value, l: value }, { requiredKeys: [] }), (input) => {
      try {
        coerceParams(spec, input)
      } catch (e) {
        if (!isResidentError(e) || e.code !== 'RES_ERR_BAD_PARAM') throw e
      }
    }))
  })

  it('accepts exactly the integers written in decimal', () => {
    fc.assert(fc.property(fc.string(), (s) => {
      let ok = true
      try { coerceParams({ v: param.integer() }, { v: s }) } catch { ok = false }
      return ok === (/^\s*[+-]?\d+\s*$/.test(s) && Number.isSafeInteger(Number(s)))
    }))
  })
})
