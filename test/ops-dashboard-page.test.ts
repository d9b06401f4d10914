import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

const HOSTILE = `import { Extension } from 'resident-host'
export default class Hostile extends Extension {
  init() { throw new Error('<img src=x onerror=alert(1)><script>alert(2)</script>') }
  run() { return 1 }
}`
const CALC = `import { Extension } from 'resident-host'
export default class Calc extends Extension { add({ a, b }) { return { sum: Number(a) + Number(b) } } }`

describe('/_resident/ page', () => {
  it('escapes what extensions wrote (a load error) and sends a strict CSP', async () => {
    t = await startTestServer({ extensions: { 'hostile.ts': HOSTILE, 'calc.ts': CALC } })
    expect((await t.inject('/hostile/run')).statusCode).toBe(500)
    const r = await t.inject('/_resident/')
    expect(r.statusCode).toBe(200)
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(r.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    expect(r.headers['x-frame-options']).toBe('DENY')
    expect(r.body).not.toContain('<img src=x')
    expect(r.body).not.toContain('<script>alert')
    expect(r.body).toContain('&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;')
    // The only script is the page's own file.
    expect([...r.body.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual(['<script src="/_resident/dashboard.js" defer>'])
    expect(r.body).not.toMatch(/<[^>]*\s(style|on[a-z]+)=/)
  })

  it('is on the admin surface, with its script, stylesheet and event stream', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    for (const url of ['/_resident/', '/_resident/dashboard.js', '/_resident/events']) {
      expect((await t.inject({ url, remoteAddress: '203.0.113.9' })).statusCode).toBe(403)
    }
    const js = await t.inject('/_resident/dashboard.js')
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(js.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/)
    expect((await t.inject('/_resident/dashboard.css')).headers['content-type']).toBe('text/css; charset=utf-8')
  })

  it('streams views as Server-Sent Events, and ends the streams on shutdown', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC } })
    const url = await t.listen()
    const res = await fetch(`${url}/_resident/events`)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const reader = res.body!.getReader()
    let text = ''
    while (!text.includes('\n\nevent: view\ndata: ')) text += new TextDecoder().decode((await reader.read()).value)
    while (!/event: view\ndata: .*\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value)
    const view = JSON.parse(/event: view\ndata: (.*)\n\n/.exec(text)![1]!)
    expect(view.sections.find((s: { id: string }) => s.id === 'extensions').rows.map((r: { key: string }) => r.key)).toEqual(['calc'])
    expect(t.server.streams.clients).toBe(1)
    const closed = t.server.close()
    for (;;) if ((await reader.read()).done) break
    await closed
  })
})

describe('/_resident/ worker and pool processes', () => {
  it('lists the worker threads of a worker-mode extension, and none once it is unloaded', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { extensions: { calc: { mode: 'worker', worker: { pool: 2 } } } } })
    expect((await t.inject('/calc/add?a=1&b=2')).statusCode).toBe(200)
    const page = (await t.inject('/_resident/')).body
    const section = page.slice(page.indexOf('id="sec-mode-processes"'))
    expect(section.match(/<td>worker thread<\/td>/g)).toHaveLength(2)
    expect(section).toContain('<td>calc #1</td>')
    const snapshot = await t.server.snapshot()
    expect(snapshot.modeProcesses).toHaveLength(2)
    expect(snapshot.modeProcesses.map((p) => [p.kind, p.extension, p.generation, p.pid])).toEqual([['worker thread', 'calc', 1, null], ['worker thread', 'calc', 1, null]])
    expect(snapshot.modeProcesses.reduce((n, p) => n + (p.requests ?? 0), 0)).toBe(1)
    expect((await t.inject({ method: 'POST', url: '/_resident/extensions/calc/unload', headers: { 'x-resident-admin': '1' } })).statusCode).toBe(200)
    expect((await t.server.snapshot()).modeProcesses).toEqual([])
  }, 30_000)

  it('lists the processes of a FastCGI pool Resident manages, with their pids', async () => {
    t = await startTestServer({ extensions: { 'calc.ts': CALC }, config: { mode: 'fastcgi', pool: { pm: 'static', maxChildren: 2 } } })
    expect((await t.inject('/calc/add?a=1&b=2')).statusCode).toBe(200)
    const rows = (await t.server.snapshot()).modeProcesses
    expect(rows.map((p) => [p.kind, p.extension, p.generation])).toEqual([['fastcgi', 'calc', 1], ['fastcgi', 'calc', 1]])
    for (const p of rows) expect(() => process.kill(p.pid!, 0)).not.toThrow()
    expect(rows.reduce((n, p) => n + (p.requests ?? 0), 0)).toBeGreaterThanOrEqual(1)
    const page = (await t.inject('/_resident/')).body
    expect(page).toContain(`<td>${rows[0]!.pid}</td>`)
  }, 60_000)
})
