// The behaviour every mode must show, as one suite parameterised by mode: each mode's test file is
// `behaviourSuite('<mode>')`. The extensions are the repository's own examples plus a probe that
// reports what it saw; nothing here knows how a mode runs them. Observations that must outlive a
// command (init, dispose, an abort) are written by the extension to a file, since the extension may
// run in another thread or process.
import { readFileSync, copyFileSync, existsSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Mode } from '../../src/config/modes.ts'
import type { ConfigInput } from '../../src/config/load.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { waitFor } from '../helpers/poll.ts'
import { ndjsonLines, readEventStream, type SseMessage } from '../helpers/sse.ts'

/** The behaviours, by name: a mode that cannot show one skips it with the reason. */
export type Behaviour =
  | 'params' | 'errors' | 'results' | 'state' | 'lifecycle' | 'host' | 'streaming' | 'objects' | 'bodies' | 'request' | 'abort' | 'deadline'

export interface BehaviourOptions {
  /** Config merged over the suite's own (e.g. the mode's settings). */
  config?: ConfigInput
  /** Behaviours this mode cannot show, with the reason (e.g. CGI keeps no state between requests). */
  skip?: Partial<Record<Behaviour, string>>
  /**
   * For a behaviour this mode cannot show by its nature: what it does instead, tested in its place
   * (a skip alone would leave that unchecked). The title says what is asserted, `why` the reason.
   */
  instead?: Partial<Record<Behaviour, Instead>>
}

/** What a mode's own test of a behaviour it does differently can reach. */
export interface SuiteContext {
  mode: Mode
  inject: TestServer['inject']
  /** The listening server's URL. */
  base: string
  /** What the probe extension wrote down so far (init, dispose, aborts), one event a line. */
  events(): string
}

export interface Instead {
  why: string
  title: string
  test(ctx: SuiteContext): Promise<void>
}

const EXAMPLES = path.resolve(import.meta.dirname, '../../extensions')

const PROBE = `import { Extension, HttpError, ServerSentEvent, param, sse } from 'resident-host'
import { appendFileSync, existsSync } from 'node:fs'
import { Readable } from 'node:stream'
import path from 'node:path'

export default class Probe extends Extension {
  static commands = {
    coerce: { params: { n: param.integer({ min: 1 }), flag: param.boolean({ default: false }), tags: param.array(param.string(), { optional: true }) } },
    onlyPost: { methods: ['POST'] },
    upload: { methods: ['POST'], accepts: ['image/png'] },
  }
  // Beside the extensions folder: the test server's temporary folder.
  _note(line) { appendFileSync(path.join(this.host.dir, '..', 'events.log'), line + '\\n') }
  init() { this._note('init ' + this.host.generation) }
  dispose(reason) { this._note('dispose ' + this.host.generation + ' ' + reason) }

  coerce(p) { return p }
  onlyPost() { return 'posted' }
  teapot() { throw new HttpError(418, 'short and stout', { code: 'TEAPOT', data: { spout: true }, headers: { 'x-tea': 'earl grey' } }) }
  boom() { throw new Error('secret detail') }
  async rejects() { await null; throw new TypeError('async detail') }
  nothing() {}
  bytes() { return new Uint8Array([104, 105]) }
  text() { return 'plain' }
  list() { return [1, 'two', null] }
  async *iter() { yield 'x'; yield 'y' }
  readable() { return Readable.from(['a', 'b', 'c']) }
  async *objects() { yield { n: 1 }; yield [2, 'two'] }
  // A file beside the extensions folder (the test writes it) decides when the generator moves on,
  // so "sent as yielded" is shown by order, not time, in any thread or process.
  async *gated(p) {
    yield { n: 1 }
    await this._gate(p.gate)
    yield { n: 2 }
  }
  idleTicks(p) { return sse((async function* (self) { yield { tick: 1 }; await self._gate(p.gate); yield { tick: 2 } })(this), { keepAlive: 20 }) }
  async _gate(name) {
    const file = path.join(this.host.dir, '..', 'gate-' + name)
    while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10))
  }
  // Leaves the client waiting for its first chunk until the client has gone, then yields anyway.
  async *lateStart(_p, req) {
    try {
      this._note('starting ' + req.query.token)
      await new Promise((resolve) => req.signal.addEventListener('abort', resolve))
      yield { late: true }
      yield { later: true }
    } finally { this._note('closed ' + req.query.token) }
  }
  async *unsendable() {
    yield { ok: 1 }
    yield { big: 10n }
    yield { never: true }
  }
  async *named() { yield new ServerSentEvent({ event: 'greeting', id: '7', data: { hello: 'you' } }); yield 'two\\nlines' }
  ticks() { return sse((async function* () { yield { tick: 1 }; yield { tick: 2 } })(), { keepAlive: 0 }) }
  async *forever(_p, req) {
    try {
      for (let i = 0; ; i++) {
        if (i === 1) this._note('streaming ' + req.query.token)
        yield { i }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    } finally { this._note('closed ' + req.query.token) }
  }
  web() {
    const h = new Headers({ 'x-custom': 'yes', 'content-type': 'text/x-made' })
    h.append('set-cookie', 'a=1')
    h.append('set-cookie', 'b=2')
    return new Response('made', { status: 201, headers: h })
  }
  fn() { return () => 1 }
  body(_p, req) {
    const b = req.body
    return { contentType: req.contentType, body: b instanceof Uint8Array ? { bytes: Array.from(b) } : b ?? null, rawLength: req.rawBody.length, rawIsBuffer: Buffer.isBuffer(req.rawBody) }
  }
  upload(_p, req) { return { type: req.contentType, length: req.body.length } }
  settings() { return { greeting: this.host.config.greeting, name: this.host.name, generation: this.host.generation } }
  timer() { return new Promise((resolve) => this.host.setTimeout(() => resolve({ fired: true }), 5)) }
  request(params, req) {
    return { id: req.id, method: req.method, url: req.url, path: req.path, query: req.query, extension: req.extension, command: req.command,
      client: req.clientAddress, user: req.user ?? null, accept: req.headers['x-probe'] ?? null, params }
  }
  async wait(_p, req) {
    this._note('waiting ' + req.query.token)
    await new Promise((resolve) => req.signal.addEventListener('abort', resolve))
    const r = req.signal.reason
    this._note('aborted ' + req.id + ' ' + (r && r.code ? r.code : r && r.message))
    return 'late'
  }
}`

// Attaches the x-user header as the request's user, so the suite sees what a command gets of it.
const USER_FILTER = `import { Filter } from 'resident-host'
export default class User extends Filter {
  onAuthenticate(req) {
    const name = req.headers['x-user']
    if (typeof name === 'string') req.user = { name, roles: ['reader'], since: new Date(0) }
  }
}`

export function behaviourSuite(mode: Mode, options: BehaviourOptions = {}): void {
  const skip = options.skip ?? {}
  const instead = options.instead ?? {}

  describe(`behaviour in mode ${mode}`, () => {
    let t: TestServer
    let base: string
    let markers: string
    const events = () => existsSync(path.join(markers, 'events.log')) ? readFileSync(path.join(markers, 'events.log'), 'utf8') : ''
    const ctx: SuiteContext = { mode, get inject() { return t.inject }, get base() { return base }, events }
    const when = (b: Behaviour) => (title: string, fn: () => Promise<void>) => {
      const other = instead[b]
      if (other) it(`${b}, as this mode does it (${other.why}): ${other.title}`, () => other.test(ctx))
      else (skip[b] ? it.skip : it)(title, fn)
    }

    beforeAll(async () => {
      t = await startTestServer({
        extensions: { 'probe.ts': PROBE },
        filters: { 'user.ts': USER_FILTER },
        config: {
          mode,
          // Short for the deadline behaviour, yet long enough that a process or worker starting on a
          // loaded machine answers in time. Streams here outlive it (a gate the test opens): their
          // own deadline.
          requestTimeout: '3s',
          limits: { streamTimeout: '2m' },
          ...options.config,
          extensions: { probe: { config: { greeting: 'hi' } } },
        },
      })
      markers = t.dir
      for (const f of ['hello.ts', 'calc.ts', 'counter.ts', 'stream.ts']) copyFileSync(path.join(EXAMPLES, f), path.join(t.extensionsDir, f))
      base = await t.listen()
    })
    afterAll(() => t?.close())

    it('reports its mode on the status page', async () => {
      await t.inject('/hello/greet')
      const status = (await t.inject('/_resident/status')).json() as { extensions: Array<{ name: string; mode: string }> }
      expect(status.extensions.find((e) => e.name === 'hello')?.mode).toBe(mode)
    })

    when('params')('validates and coerces parameters, with defaults', async () => {
      expect((await t.inject('/hello/greet?name=ann')).json()).toEqual({ hello: 'ann' })
      expect((await t.inject('/hello/greet')).json()).toEqual({ hello: 'world' })
      expect((await t.inject('/calc/add?a=2')).json()).toEqual({ sum: 7 })
      expect((await t.inject('/probe/coerce?n=3&flag=yes&tags=a&tags=b')).json()).toEqual({ n: 3, flag: true, tags: ['a', 'b'] })
      const bad = await t.inject('/calc/add?a=two')
      expect(bad.statusCode).toBe(400)
      expect(bad.json().error).toMatchObject({ code: 'RES_ERR_BAD_PARAM', data: { param: 'a', rule: 'integer' }, requestId: expect.any(String) })
      expect((await t.inject('/probe/coerce?n=0')).json().error.data).toEqual({ param: 'n', rule: 'min' })
    })

    when('errors')('answers 404, 405, HttpError with its headers, and 500 with a request id', async () => {
      expect((await t.inject('/probe/missing')).json().error.code).toBe('RES_ERR_UNKNOWN_COMMAND')
      expect((await t.inject('/nosuch/thing')).statusCode).toBe(404)
      const m = await t.inject('/probe/onlyPost')
      expect(m.statusCode).toBe(405)
      expect(m.headers.allow).toBe('POST')
      const tea = await t.inject('/probe/teapot')
      expect(tea.statusCode).toBe(418)
      expect(tea.headers['x-tea']).toBe('earl grey')
      expect(tea.json().error).toMatchObject({ code: 'TEAPOT', message: 'short and stout', data: { spout: true } })
      expect((await t.inject('/calc/div?a=1&b=0')).json().error.code).toBe('DIVISION_BY_ZERO')
      for (const url of ['/probe/boom', '/probe/rejects']) {
        const r = await t.inject({ url, headers: { 'x-request-id': 'ignored' } })
        expect(r.statusCode).toBe(500)
        const error = r.json().error
        expect(error).toMatchObject({ code: 'RES_ERR_COMMAND_FAILED', requestId: expect.any(String) })
        expect(JSON.stringify(error)).not.toMatch(/detail/)
      }
      const fn = await t.inject('/probe/fn')
      expect(fn.statusCode).toBe(500)
      expect(fn.json().error.code).toBe('RES_ERR_BAD_RESULT')
    })

    when('results')('turns results into responses: JSON, text, bytes, 204, web Response', async () => {
      const list = await t.inject('/probe/list')
      expect(list.headers['content-type']).toMatch(/^application\/json/)
      expect(list.json()).toEqual([1, 'two', null])
      const text = await t.inject('/probe/text')
      expect(text.headers['content-type']).toMatch(/^text\/plain/)
      expect(text.body).toBe('plain')
      const bytes = await t.inject('/probe/bytes')
      expect(bytes.headers['content-type']).toBe('application/octet-stream')
      expect(bytes.body).toBe('hi')
      const none = await t.inject('/probe/nothing')
      expect(none.statusCode).toBe(204)
      expect(none.body).toBe('')
      const web = await t.inject('/probe/web')
      expect(web.statusCode).toBe(201)
      expect(web.headers).toMatchObject({ 'x-custom': 'yes', 'content-type': 'text/x-made', 'set-cookie': ['a=1', 'b=2'] })
      expect(web.body).toBe('made')
      const page = await t.inject('/hello/')
      expect(page.headers['content-type']).toMatch(/^text\/html/)
    })

    when('state')('keeps state across requests while resident', async () => {
      const first = (await t.inject('/counter/increment')).json() as { count: number }
      const second = (await t.inject('/counter/increment')).json() as { count: number }
      expect(second.count).toBe(first.count + 1)
      expect((await t.inject('/counter/value')).json()).toEqual(second)
    })

    when('lifecycle')('runs init() on load and dispose(reason) on unload', async () => {
      await t.inject('/probe/text')
      expect(events()).toMatch(/^init \d+$/m)
      const gen = Number(/^init (\d+)$/m.exec(events())![1])
      const r = await t.inject({ method: 'POST', url: '/_resident/extensions/probe/unload', headers: { 'x-resident-admin': '1' } })
      expect(r.json()).toMatchObject({ unloaded: true })
      await waitFor(() => events().includes(`dispose ${gen} admin`), 'dispose after unload')
      await t.inject('/probe/text')
      await waitFor(() => events().includes(`init ${gen + 1}`), 'init of the next generation')
    })

    when('host')('gives the host handle: config, name, generation, timers', async () => {
      expect((await t.inject('/probe/settings')).json()).toMatchObject({ greeting: 'hi', name: 'probe', generation: expect.any(Number) })
      expect((await t.inject('/probe/timer')).json()).toEqual({ fired: true })
    })

    when('streaming')('streams async iterables and Readables as they are produced', async () => {
      expect((await t.inject('/probe/iter')).body).toBe('xy')
      expect((await t.inject('/probe/readable')).body).toBe('abc')
      const res = await fetch(`${base}/stream/?chunks=3&delay=20`)
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
      expect(await res.text()).toBe('chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n')
    })

    when('objects')('streams objects as NDJSON, or as Server-Sent Events when asked, and closes the source when the client leaves', async () => {
      const nd = await fetch(`${base}/probe/objects`)
      expect(nd.headers.get('content-type')).toMatch(/^application\/x-ndjson/)
      expect(await nd.text()).toBe('{"n":1}\n[2,"two"]\n')
      const asked = await fetch(`${base}/probe/objects`, { headers: { accept: 'text/event-stream' } })
      expect(asked.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(await asked.text()).toBe('data: {"n":1}\n\ndata: [2,"two"]\n\n')
      expect(await (await fetch(`${base}/probe/named`, { headers: { accept: 'text/event-stream' } })).text()).toBe('event: greeting\nid: 7\ndata: {"hello":"you"}\n\ndata: two\ndata: lines\n\n')
      const ticks = await fetch(`${base}/probe/ticks`)
      expect(ticks.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(await ticks.text()).toBe('data: {"tick":1}\n\ndata: {"tick":2}\n\n')
      const token = `objects-${mode}-${Date.now()}`
      const req = http.get(`${base}/probe/forever?token=${token}`)
      req.on('error', () => undefined)
      await waitFor(() => events().includes(`streaming ${token}`), 'the endless stream under way', 30_000)
      req.destroy()
      await waitFor(() => events().includes(`closed ${token}`), 'the source closed after the client left', 30_000)
    })

    when('objects')('sends each object as it is yielded, with SSE keep-alive comments while the source waits', async () => {
      const open = (name: string) => writeFileSync(path.join(markers, `gate-${name}-${mode}`), '')
      const nd = await fetch(`${base}/probe/gated?gate=nd-${mode}`)
      const lines = ndjsonLines(nd.body!)
      expect((await lines.next()).value).toEqual({ n: 1 })
      // The generator waits at the gate: the first line arrived before the stream could end.
      open('nd')
      const rest: unknown[] = []
      for await (const l of lines) rest.push(l)
      expect(rest).toEqual([{ n: 2 }])

      const got: SseMessage[] = []
      const asked = await fetch(`${base}/probe/gated?gate=ev-${mode}`, { headers: { accept: 'text/event-stream' } })
      const reading = readEventStream(asked.body!, { message: (m) => { got.push(m) } })
      await waitFor(() => got.length === 1, 'the first event')
      open('ev')
      await reading
      expect(got.map((m) => JSON.parse(m.data))).toEqual([{ n: 1 }, { n: 2 }])

      const ticks: unknown[] = []
      const comments: string[] = []
      const idle = await fetch(`${base}/probe/idleTicks?gate=tk-${mode}`)
      const ticking = readEventStream(idle.body!, { message: (m) => { ticks.push(JSON.parse(m.data)) }, comment: (c) => { comments.push(c) } })
      await waitFor(() => ticks.length === 1 && comments.length >= 2, 'keep-alive comments while the source waits')
      expect(comments[0]).toBe('keep-alive')
      open('tk')
      await ticking
      expect(ticks).toEqual([{ tick: 1 }, { tick: 2 }])
    })

    when('objects')('closes an object stream whose client left before its first chunk', async () => {
      const token = `late-${mode}-${Date.now()}`
      const req = http.get(`${base}/probe/lateStart?token=${token}`)
      req.on('error', () => undefined)
      await waitFor(() => events().includes(`starting ${token}`), 'the generator started', 30_000)
      req.destroy()
      await waitFor(() => events().includes(`closed ${token}`), 'the generator closed although its first chunk came after the client left', 30_000)
    })

    when('objects')('ends an object stream whose chunk cannot be sent with an error record, and logs the line of its yield', async () => {
      const r = await fetch(`${base}/probe/unsendable`)
      const got: unknown[] = []
      for await (const l of ndjsonLines(r.body!)) got.push(l)
      expect(got).toEqual([{ ok: 1 }, { error: { code: 'RES_ERR_BAD_RESULT', message: expect.stringContaining('chunk 2 of the stream from /probe/unsendable cannot be sent'), requestId: expect.any(String) } }])
      const line = PROBE.split('\n').findIndex((l) => l.includes('yield { big: 10n }')) + 1
      const logged = await waitFor(() => t.logs.find((l) => JSON.stringify(l).includes('chunk 2 of the stream from /probe/unsendable')), 'the log line')
      expect(JSON.stringify(logged)).toContain(`probe.ts:${line}:`)
    })

    when('bodies')('passes request bodies of every kind', async () => {
      const json = await t.inject({ method: 'POST', url: '/probe/body', payload: { a: [1, 2] } })
      expect(json.json()).toMatchObject({ contentType: 'application/json', body: { a: [1, 2] }, rawIsBuffer: true })
      const form = await t.inject({ method: 'POST', url: '/probe/body', payload: 'x=1&x=2&y=3', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      expect(form.json().body).toEqual({ x: ['1', '2'], y: '3' })
      const text = await t.inject({ method: 'POST', url: '/probe/body', payload: 'héllo', headers: { 'content-type': 'text/plain; charset=utf-8' } })
      expect(text.json()).toMatchObject({ contentType: 'text/plain', body: 'héllo', rawLength: 6 })
      const raw = await t.inject({ method: 'POST', url: '/probe/body', payload: Buffer.from([0, 1, 255]), headers: { 'content-type': 'application/octet-stream' } })
      expect(raw.json()).toMatchObject({ body: { bytes: [0, 1, 255] }, rawLength: 3, rawIsBuffer: true })
      const big = Buffer.alloc(200_000, 7)
      const png = await t.inject({ method: 'POST', url: '/probe/upload', payload: big, headers: { 'content-type': 'image/png' } })
      expect(png.json()).toEqual({ type: 'image/png', length: 200_000 })
      const refused = await t.inject({ method: 'POST', url: '/probe/body', payload: '<x/>', headers: { 'content-type': 'application/xml' } })
      expect(refused.statusCode).toBe(415)
      expect((await t.inject({ method: 'POST', url: '/probe/body', payload: '{bad', headers: { 'content-type': 'application/json' } })).statusCode).toBe(400)
    })

    when('request')('shows the command its request: id, URL, query, headers, client address, user as plain JSON', async () => {
      const r = (await t.inject({ url: '/probe/request?q=1&q=2', headers: { 'x-probe': 'yes', 'x-user': 'ann' } })).json()
      expect(r).toMatchObject({
        id: expect.any(String), method: 'GET', url: '/probe/request?q=1&q=2', path: '/probe/request', query: { q: ['1', '2'] },
        extension: 'probe', command: 'request', client: '127.0.0.1', accept: 'yes',
        user: { name: 'ann', roles: ['reader'], since: '1970-01-01T00:00:00.000Z' },
        params: { q: ['1', '2'] },
      })
    })

    when('abort')('aborts the command’s signal when the client goes away', async () => {
      const token = `leave-${mode}-${Date.now()}`
      const req = http.get(`${base}/probe/wait?token=${token}`)
      req.on('error', () => undefined)
      // Leaves once the command runs (a mode may take a while to start it), not after a guess.
      await waitFor(() => events().includes(`waiting ${token}`), 'the command under way', 30_000)
      req.destroy()
      await waitFor(() => /^aborted .* the client closed the connection$/m.test(events()), 'the abort marker', 30_000)
    })

    when('deadline')('answers 504 past requestTimeout and aborts the signal with RES_ERR_TIMEOUT', async () => {
      const r = await fetch(`${base}/probe/wait`)
      expect(r.status).toBe(504)
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('RES_ERR_TIMEOUT')
      await waitFor(() => /^aborted .* RES_ERR_TIMEOUT$/m.test(events()), 'the timeout marker')
      // Still serving afterwards.
      expect((await t.inject('/hello/greet')).statusCode).toBe(200)
    })
  })
}
