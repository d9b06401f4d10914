import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// The markdown example as shipped: marked was quadratic on runs of '!*a' (60 KB froze the host
// 44 s), overflowed its stack on deep nesting, and echoed <script> as text/html with no CSP.
const MARKDOWN = readFileSync(path.resolve(import.meta.dirname, '../extensions/markdown.ts'), 'utf8')
const HELLO = `import { Extension } from 'resident-host'
export default class Hello extends Extension { greet() { return 'hi' } }`

describe('the markdown example is safe to copy', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    t = await startTestServer({ inRepo: true, extensions: { 'markdown.ts': MARKDOWN, 'hello.ts': HELLO } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  const render = (text: string) => fetch(`${base}/markdown/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) })

  it('escapes raw HTML and sends a sandboxing CSP and nosniff', async () => {
    const r = await render('# Title\n\n<script>fetch("/_resident/status")</script>\n\ntext <img src=x onerror=alert(1)> more')
    expect(r.status).toBe(200)
    const html = await r.text()
    expect(html).toContain('<h1>Title</h1>')
    expect(html).not.toMatch(/<script|<img/i)
    expect(html).toContain('&#60;script&#62;')
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'.*sandbox/)
    expect(r.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('links and images keep only web, mail and relative targets', async () => {
    const r = await render('[a](javascript:alert(1)) [b](JaVa\tScRiPt:alert(1)) <javascript:alert(1)> ![c](data:text/html,x) [d](vbscript:x) [ok](https://example.com/x) [rel](/hello/greet) [m](mailto:a@b.c)\n\n[ref]: javascript:alert(1)\n\n[e][ref]')
    const html = await r.text()
    expect(html).not.toMatch(/(?:href|src)="\s*(?:javascript|vbscript|data):/i)
    expect(html).toContain('href="https://example.com/x"')
    expect(html).toContain('href="/hello/greet"')
    expect(html).toContain('href="mailto:a@b.c"')
  })

  it('a pathological input is rendered off the event loop: the host answers others meanwhile, and the render ends with a 422', async () => {
    const slow = render('!*a'.repeat(16_000))
    const order: string[] = []
    const renders = slow.then((r) => { order.push('markdown'); return r })
    const others = (async () => {
      for (let i = 0; i < 5; i++) expect(await (await fetch(`${base}/hello/greet`)).text()).toBe('hi')
      order.push('others')
    })()
    const [r] = await Promise.all([renders, others])
    expect(order).toEqual(['others', 'markdown'])
    expect([200, 422]).toContain(r.status)
    if (r.status === 422) expect((await r.json()).error.code).toMatch(/^RENDER_/)
  })

  it('deep nesting is a client error or a page, never a 500', async () => {
    const r = await render('>'.repeat(2000) + ' deep')
    expect(r.status).toBeLessThan(500)
    const again = await render('still *works*')
    expect(await again.text()).toContain('<em>works</em>')
  })

  it('input past the declared maxLength is refused before any rendering', async () => {
    const r = await render('x'.repeat(50_001))
    expect(r.status).toBe(400)
    expect((await r.json()).error.data).toEqual({ param: 'text', rule: 'maxLength' })
  })
})

describe('pages on the host\'s origin run no untrusted script', () => {
  const SECURITY = readFileSync(path.resolve(import.meta.dirname, '../filters/security-headers.ts'), 'utf8')

  it('the security-headers filter sets a CSP by default, a command\'s own wins, and config replaces or removes it', async () => {
    const page = `import { Extension } from 'resident-host'
export default class Page extends Extension {
  plain() { return 'x' }
  own() { return new Response('x', { headers: { 'content-security-policy': "default-src 'none'" } }) }
}`
    for (const [config, expected] of [[{}, /default-src 'self'.*frame-ancestors 'none'/], [{ contentSecurityPolicy: "default-src 'none'; sandbox" }, /sandbox/], [{ contentSecurityPolicy: false }, null]] as const) {
      const t = await startTestServer({ inRepo: true, extensions: { 'page.ts': page }, filters: { 'security-headers.ts': SECURITY }, config: { filters: { modules: { 'security-headers': { config } } } } })
      try {
        const r = await t.inject('/page/plain')
        if (expected === null) expect(r.headers['content-security-policy']).toBeUndefined()
        else expect(r.headers['content-security-policy']).toMatch(expected)
        expect((await t.inject('/page/own')).headers['content-security-policy']).toBe("default-src 'none'")
      } finally {
        await t.close()
      }
    }
  })

  it('the admin surface answers with a CSP that runs nothing, and nosniff', async () => {
    const t = await startTestServer({})
    try {
      const r = await t.inject({ url: '/_resident/status', remoteAddress: '127.0.0.1' })
      expect(r.statusCode).toBe(200)
      expect(r.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'")
      expect(r.headers['x-content-type-options']).toBe('nosniff')
      expect((await t.inject({ url: '/_RESIDENT/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(404)
    } finally {
      await t.close()
    }
  })
})
