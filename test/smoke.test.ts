import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

describe('smoke', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      extensions: {
        'calc.ts': `import { Extension, param } from 'resident'
export default class Calc extends Extension {
  static commands = { add: { params: { a: param.integer(), b: param.integer({ default: 5 }) } } }
  add({ a, b }) { return { sum: a + b } }
}`,
      },
    })
  })
  afterAll(() => t.close())

  it('serves a command with parse-map coercion and defaults', async () => {
    const r = await t.inject('/calc/add?a=2')
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ sum: 7 })
  })
})
