import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const HELLO = `import { Extension, param } from 'resident-host'
export default class Hello extends Extension {
  static commands = { greet: { params: { name: param.string({ default: 'world', maxLength: 100 }) } } }
  greet({ name }) { return { hello: name } }
  echo(params) { return { keys: Object.keys(params) } }
}`

// Keys a loader or the request path might read from an options object that lacks them.
const POISON = ['polluted', 'default', 'optional', 'params', 'methods', 'accepts', 'config', 'idleTimeout',
  'enabled', 'entry', 'priority', 'paths', 'commands', 'defaultCommand', 'type', 'items', 'min', 'max', 'pattern']

const POLLUTER = `import { Extension } from 'resident-host'
export default class Polluter extends Extension {
  index() {
    for (const k of ${JSON.stringify(POISON)}) Object.prototype[k] = k === 'methods' || k === 'accepts' || k === 'paths' ? ['DELETE'] : 'x'
    return 'polluted'
  }
}`

const LATER = `import { Extension, param } from 'resident-host'
export default class Later extends Extension {
  static commands = { add: { params: { a: param.integer(), b: param.integer({ optional: true }) } } }
  add({ a, b }) { return { sum: a + (b ?? 0) } }
}`

const GATE = `import { Filter } from 'resident-host'
export default class Gate extends Filter {
  static paths = ['/later/**']
  onAuthenticate(req) { req.user = { name: 'gate' } }
}`

// Through a real socket: fastify's inject (light-my-request) itself reads `for…in` and would
// carry the polluted keys into the request.
describe('one extension polluting Object.prototype does not break the others', () => {
  let t: TestServer
  let base: string
  const get = async (url: string, init?: RequestInit) => {
    const r = await fetch(base + url, init)
    const text = await r.text()
    return { statusCode: r.status, body: text, json: () => JSON.parse(text) }
  }
  const post = (url: string, body?: string, type = 'application/json', headers: Record<string, string> = {}) =>
    get(url, { method: 'POST', body, headers: { 'content-type': type, ...headers } })
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'hello.ts': HELLO, 'polluter.ts': POLLUTER, 'later.ts': LATER }, filters: { 'gate.ts': GATE } })
    base = await t.listen()
  })
  afterAll(async () => {
    for (const k of POISON) delete (Object.prototype as Record<string, unknown>)[k]
    await t.close()
  })

  it('keeps serving requests, loading extensions and reloading filters', async () => {
    expect((await get('/hello/greet?name=before')).json()).toEqual({ hello: 'before' })
    // The command that polluted fails, the keys it added are removed and the log names them.
    const polluter = await get('/polluter/')
    expect(polluter.statusCode).toBe(500)
    expect(polluter.json().error.requestId).toBeTruthy()
    expect(Object.keys(Object.prototype)).toEqual([])
    expect(t.logs.some((l) => /polluter\/index added Object\.prototype\.polluted.*removed/.test(l.msg))).toBe(true)
    try {
      const greet = await get('/hello/greet?name=you')
      expect(greet.statusCode).toBe(200)
      expect(greet.json()).toEqual({ hello: 'you' })
      expect((await get('/hello/greet')).json()).toEqual({ hello: 'world' })
      expect((await get('/hello/echo?a=1')).json()).toEqual({ keys: ['a'] })
      // A first load after the pollution: its options and parameter declarations read own keys only.
      const later = await get('/later/add?a=2&b=3')
      expect(later.statusCode).toBe(200)
      expect(later.json()).toEqual({ sum: 5 })
      expect((await get('/later/add?a=2')).json()).toEqual({ sum: 2 })
      expect((await post('/later/add', '{"a":1}')).json()).toEqual({ sum: 1 })
      expect((await post('/later/add', 'a=4', 'application/x-www-form-urlencoded')).json()).toEqual({ sum: 4 })
      const reload = await post('/_resident/extensions/hello/reload', undefined, 'text/plain', { 'x-resident-admin': '1' })
      expect(reload.statusCode).toBe(200)
      expect((await get('/hello/greet?name=again')).json()).toEqual({ hello: 'again' })
      const filters = await post('/_resident/filters/reload', undefined, 'text/plain', { 'x-resident-admin': '1' })
      expect(filters.statusCode).toBe(200)
      expect((await get('/later/add?a=7')).json()).toEqual({ sum: 7 })
      const status = await get('/_resident/status')
      expect(status.statusCode).toBe(200)
      expect((await get('/nothing-here/')).statusCode).toBe(404)
    } finally {
      for (const k of POISON) delete (Object.prototype as Record<string, unknown>)[k]
    }
  })
})
