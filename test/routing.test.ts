import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const SHOP = `import { Extension } from 'resident-host'
class Base extends Extension {
  inherited() { return 'from base' }
}
export default class Shop extends Base {
  static defaultCommand = 'list'
  static staticThing() { return 'static' }
  #secret() { return 'private' }
  list() { return ['a', 'b'] }
  ListItems() { return 'case' }
  _hidden() { return 'hidden' }
  get price() { return 1 }
  set price(v) {}
  init() {}
  dispose() {}
  canUnload() { return true }
  exportState() { return null }
  importState() {}
  usesSecret() { return this.#secret() }
}`

describe('routing', () => {
  let t: TestServer
  beforeAll(async () => {
    t = await startTestServer({
      extensions: {
        'shop.ts': SHOP,
        'hello.ts': `import { Extension } from 'resident-host'
export default class Hello extends Extension {
  index() { return 'index page' }
  static commands = { onlyPost: { methods: ['POST'] }, del: { methods: ['DELETE'] } }
  onlyPost() { return 'posted' }
  del() { return 'deleted' }
}`,
        'folder/index.ts': `import { Extension } from 'resident-host'
export default class F extends Extension { index() { return 'folder index' } }`,
        'pkg/package.json': JSON.stringify({ main: 'main.mjs' }),
        'pkg/main.mjs': `import { Extension } from 'resident-host'
export default class P extends Extension { index() { return 'pkg main' } }`,
        'cjs.cjs': `const { Extension } = require('resident-host')
module.exports = class C extends Extension { index() { return 'cjs' } }`,
        'plainjs.js': `import { Extension } from 'resident-host'
export default class J extends Extension { index() { return 'js' } }`,
        'mts.mts': `import { Extension } from 'resident-host'
export default class M extends Extension { index(): string { return 'mts' } }`,
        'Upper.ts': `import { Extension } from 'resident-host'
export default class U extends Extension { index() { return 'upper' } }`,
        'with.dot.ts': `import { Extension } from 'resident-host'
export default class D extends Extension { index() { return 'dot' } }`,
        '_helper.ts': `export const x = 1`,
      },
    })
  })
  afterAll(() => t.close())

  it('serves /<extension>/<command>, case-insensitively', async () => {
    expect((await t.inject('/shop/list')).json()).toEqual(['a', 'b'])
    expect((await t.inject('/shop/LIST')).json()).toEqual(['a', 'b'])
    expect((await t.inject('/SHOP/listitems')).body).toBe('case')
    expect((await t.inject('/shop/listItems/')).body).toBe('case')
  })

  it('serves inherited public methods', async () => {
    expect((await t.inject('/shop/inherited')).body).toBe('from base')
  })

  it('runs the default command for /<extension>/ and /<extension>', async () => {
    expect((await t.inject('/shop/')).json()).toEqual(['a', 'b'])
    expect((await t.inject('/shop')).json()).toEqual(['a', 'b'])
    expect((await t.inject('/hello/')).body).toBe('index page')
    expect((await t.inject('/hello')).body).toBe('index page')
  })

  it.each([
    'constructor', 'init', 'dispose', 'canUnload', 'exportState', 'importState', '_hidden', 'price', 'staticThing',
    'secret', '%23secret', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf',
    '__defineGetter__', 'propertyIsEnumerable', 'toLocaleString', 'host',
  ])('never calls %s as a command (404)', async (name) => {
    const r = await t.inject(`/shop/${name}`)
    expect(r.statusCode).toBe(404)
    expect(r.json().error.code).toMatch(/^RES_ERR_(NOT_FOUND|UNKNOWN_COMMAND)$/)
    expect(r.json().error.requestId).toBeTruthy()
  })

  it('404s an unknown extension and an unknown command', async () => {
    const a = await t.inject('/nope/x')
    expect(a.statusCode).toBe(404)
    expect(a.json().error.code).toBe('RES_ERR_NOT_FOUND')
    const b = await t.inject('/shop/missing')
    expect(b.statusCode).toBe(404)
    expect(b.json().error.code).toBe('RES_ERR_UNKNOWN_COMMAND')
    const c = await t.inject('/shop/list/extra')
    expect(c.statusCode).toBe(404)
  })

  it('answers 405 with Allow for a method the parse map does not allow', async () => {
    const r = await t.inject({ method: 'GET', url: '/hello/onlyPost' })
    expect(r.statusCode).toBe(405)
    expect(r.headers.allow).toBe('POST')
    expect(r.json().error.code).toBe('RES_ERR_METHOD_NOT_ALLOWED')
    expect((await t.inject({ method: 'POST', url: '/hello/onlypost' })).body).toBe('posted')
    expect((await t.inject({ method: 'DELETE', url: '/hello/del' })).body).toBe('deleted')
    expect((await t.inject({ method: 'PUT', url: '/shop/list' })).statusCode).toBe(405)
  })

  it('loads folder extensions (index.* or package.json main) and every entry type', async () => {
    expect((await t.inject('/folder/')).body).toBe('folder index')
    expect((await t.inject('/pkg/')).body).toBe('pkg main')
    expect((await t.inject('/cjs/')).body).toBe('cjs')
    expect((await t.inject('/plainjs/')).body).toBe('js')
    expect((await t.inject('/mts/')).body).toBe('mts')
  })

  it('only names made of [a-z0-9-] are extensions', async () => {
    expect((await t.inject('/upper/')).statusCode).toBe(404)
    expect((await t.inject('/with.dot/')).statusCode).toBe(404)
    expect((await t.inject('/_helper/')).statusCode).toBe(404)
  })
})
