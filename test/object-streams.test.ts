import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { ndjsonLines, readEventStream, type SseMessage } from './helpers/sse.ts'
import { until } from './helpers/watch.ts'

// Streams of objects, read by real clients: fetch streaming for NDJSON, an EventSource-style
// reader for SSE. A gate command lets the test decide when the generator moves on, so that
// "arrives before the stream ends" is shown by order, not by time.
const FEED = `import { Extension, ServerSentEvent, sse } from 'resident-host'

let open = () => {}
let gate = Promise.resolve()
const closeGate = () => { gate = new Promise((r) => { open = r }) }
let finallyRan = 0

export default class Feed extends Extension {
  go() { open(); return { opened: true } }
  shut() { closeGate(); return { shut: true } }
  closed() { return { finallyRan } }

  async *items() {
    yield { n: 1 }
    await gate
    yield { n: 2 }
    yield [3, 'three']
  }

  async *named() {
    yield new ServerSentEvent({ event: 'greeting', id: '7', data: { hello: 'you' } })
    yield 'two\\nlines'
  }

  ticks() {
    return sse(this.#ticks(), { keepAlive: 20 })
  }
  async *#ticks() {
    yield { tick: 1 }
    await gate
    yield { tick: 2 }
  }

  async *forever() {
    try {
      for (let i = 0; ; i++) {
        yield { i }
        await new Promise((r) => setTimeout(r, 10))
      }
    } finally {
      finallyRan++
    }
  }

  async *bad() {
    yield { ok: 1 }
    yield { big: 10n }
    yield { never: true }
  }

  async *badFirst() {
    yield () => 'a function'
  }
}
`

describe('streams of objects', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'feed.ts': FEED }, config: { logLevel: 'info' } })
    base = await t.listen()
  })
  afterAll(() => t?.close())

  it('are NDJSON by default, each object sent as it is yielded', async () => {
    await fetch(`${base}/feed/shut`)
    const r = await fetch(`${base}/feed/items`)
    expect(r.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8')
    const lines = ndjsonLines(r.body!)
    expect((await lines.next()).value).toEqual({ n: 1 })
    // The generator is held at the gate: the first line arrived before the stream could end.
    await fetch(`${base}/feed/go`)
    const rest: unknown[] = []
    for await (const l of lines) rest.push(l)
    expect(rest).toEqual([{ n: 2 }, [3, 'three']])
  })

  it('are Server-Sent Events when the client asks for text/event-stream', async () => {
    await fetch(`${base}/feed/shut`)
    const r = await fetch(`${base}/feed/items`, { headers: { accept: 'text/event-stream' } })
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const got: SseMessage[] = []
    const reading = readEventStream(r.body!, { message: (m) => { got.push(m) } })
    await until(() => got.length === 1, 'the first event')
    await fetch(`${base}/feed/go`)
    await reading
    expect(got.map((m) => JSON.parse(m.data))).toEqual([{ n: 1 }, { n: 2 }, [3, 'three']])
    expect(got.every((m) => m.event === 'message')).toBe(true)
  })

  it('carry event names, ids and multi-line text as EventSource reads them', async () => {
    const r = await fetch(`${base}/feed/named`, { headers: { accept: 'text/event-stream' } })
    const got: SseMessage[] = []
    await readEventStream(r.body!, { message: (m) => { got.push(m) } })
    expect(got).toEqual([
      { event: 'greeting', id: '7', data: '{"hello":"you"}' },
      { event: 'message', id: '7', data: 'two\nlines' },
    ])
  })

  it('sse() sends events whatever the Accept header, with keep-alive comments while waiting', async () => {
    await fetch(`${base}/feed/shut`)
    const r = await fetch(`${base}/feed/ticks`)
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const got: unknown[] = []
    const comments: string[] = []
    const reading = readEventStream(r.body!, {
      message: (m) => { got.push(JSON.parse(m.data)) },
      comment: (c) => { comments.push(c) },
    })
    await until(() => got.length === 1 && comments.length >= 2, 'keep-alive comments while the generator waits')
    expect(comments[0]).toBe('keep-alive')
    await fetch(`${base}/feed/go`)
    await reading
    expect(got).toEqual([{ tick: 1 }, { tick: 2 }])
  })

  it('are closed when the client leaves: the finally of the generator runs', async () => {
    const before = ((await (await fetch(`${base}/feed/closed`)).json()) as { finallyRan: number }).finallyRan
    const controller = new AbortController()
    const r = await fetch(`${base}/feed/forever`, { signal: controller.signal })
    const lines = ndjsonLines(r.body!)
    expect((await lines.next()).value).toEqual({ i: 0 })
    controller.abort()
    await lines.return(undefined).catch(() => undefined)
    await until(async () => ((await (await fetch(`${base}/feed/closed`)).json()) as { finallyRan: number }).finallyRan === before + 1, 'the generator closed')
  })

  it('a chunk that cannot be sent ends the stream with an error record, and the log names the line of its yield', async () => {
    const r = await fetch(`${base}/feed/bad`)
    const got: unknown[] = []
    for await (const l of ndjsonLines(r.body!)) got.push(l)
    expect(got).toHaveLength(2)
    expect(got[0]).toEqual({ ok: 1 })
    expect(got[1]).toMatchObject({ error: { code: 'RES_ERR_BAD_RESULT', message: expect.stringContaining('chunk 2 of the stream from /feed/bad cannot be sent') } })
    const line = FEED.split('\n').findIndex((l) => l.includes('yield { big: 10n }')) + 1
    const logged = await until(() => t.logs.find((l) => JSON.stringify(l).includes('chunk 2 of the stream')), 'the log line')
    expect(JSON.stringify(logged)).toContain(`feed.ts:${line}:`)
  })

  it('a first chunk that cannot be sent is a 500 with the JSON error, logged with its line', async () => {
    const r = await fetch(`${base}/feed/badFirst`)
    expect(r.status).toBe(500)
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('RES_ERR_BAD_RESULT')
    const line = FEED.split('\n').findIndex((l) => l.includes("yield () => 'a function'")) + 1
    const logged = await until(() => t.logs.find((l) => JSON.stringify(l).includes('chunk 1 of the stream')), 'the log line')
    expect(JSON.stringify(logged)).toContain(`feed.ts:${line}:`)
  })
})
