import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import { errors } from '../errors.ts'
import { lazyBuiltin } from '../loader/builtin.ts'
import { suspendedAt } from '../loader/generator-location.ts'
import { SSE_EVENT, STREAM_FORMAT } from '../sdk/brand.ts'
import type { Logger } from '../sdk/types.ts'
import type { Outcome, OutcomeHeaders } from './outcome.ts'

// A command's async iterable, sent as it yields. Strings and bytes go out as they are (text);
// anything else is an object stream: NDJSON (application/x-ndjson), one JSON text per line, or
// Server-Sent Events (text/event-stream) when the client asks for them or the command returned
// sse(…). The first chunk is awaited before the outcome exists, so the format (and the content
// type) follow from it, and a first chunk that cannot be sent is still an ordinary 500. SSE gets a
// keep-alive comment whenever no event was sent for a while; the source is closed (its `finally`
// runs) as soon as the client leaves. A later chunk that cannot be sent ends the stream with an
// error record, and the log names the place of the `yield` that produced it.

type Format = 'text' | 'ndjson' | 'sse'

/** What the conversion needs of the request. */
export interface StreamRequest {
  id: string
  url: string
  headers: Record<string, string | string[] | undefined>
  log: Logger
}

/** Milliseconds between SSE keep-alive comments unless sse(…, { keepAlive }) says otherwise. */
export const SSE_KEEP_ALIVE = 15_000

const HEADERS: Record<Format, OutcomeHeaders> = {
  text: { 'content-type': 'text/plain; charset=utf-8' },
  ndjson: { 'content-type': 'application/x-ndjson; charset=utf-8' },
  sse: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
}

/** True for what a command may return to stream. */
export function isAsyncIterable(v: object): v is AsyncIterable<unknown> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
}

function wantsEvents(accept: string | string[] | undefined): boolean {
  const a = Array.isArray(accept) ? accept.join(',') : accept
  return a !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(a)
}

function json(value: unknown): { text: string } | { error: string } {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return { error: `a stream cannot send ${value === undefined ? 'undefined' : `a ${typeof value}`}` }
  try {
    const text = JSON.stringify(value)
    return text === undefined ? { error: 'the value has no JSON form' } : { text }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

function sseField(name: string, value: string): string {
  return value.split(/\r\n|\r|\n/).map((line) => `${name}: ${line}\n`).join('')
}

function encode(format: Format, value: unknown): Buffer | { error: string } {
  if (format === 'text') {
    if (typeof value === 'string') return Buffer.from(value)
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  }
  if (format === 'sse') {
    if (value !== null && typeof value === 'object' && (value as { [SSE_EVENT]?: unknown })[SSE_EVENT] === true) {
      const ev = value as { data: unknown; event?: string; id?: string; retry?: number }
      const data = typeof ev.data === 'string' ? { text: ev.data } : json(ev.data)
      if ('error' in data) return data
      return Buffer.from((ev.event ? sseField('event', ev.event) : '') + (ev.id !== undefined ? sseField('id', ev.id) : '') +
        (ev.retry !== undefined ? `retry: ${Math.trunc(ev.retry)}\n` : '') + sseField('data', data.text) + '\n')
    }
    const data = typeof value === 'string' ? { text: value } : json(value)
    return 'error' in data ? data : Buffer.from(sseField('data', data.text) + '\n')
  }
  if (value instanceof Uint8Array) return { error: 'a stream of objects cannot send bytes' }
  const line = json(value)
  return 'error' in line ? line : Buffer.from(line.text + '\n')
}

/** The message and the stack (its one frame the author's `yield`) of a chunk that cannot be sent. */
async function unsendable(source: object, index: number, reason: string, req: StreamRequest): Promise<{ message: string; stack: string }> {
  const where = await suspendedAt(source)
  const message = `chunk ${index} of the stream from ${req.url.split('?')[0]} cannot be sent: ${reason}`
  return { message, stack: `ResidentError [RES_ERR_BAD_RESULT]: ${message}\n    at ${where ?? 'the command\'s stream (the line of its yield is not known)'}` }
}

// Loaded with the first object stream (see loader/builtin.ts).
const stream = lazyBuiltin<typeof import('node:stream')>('node:stream')

// Each object stream's body → a promise that settles once its producer has been closed (its
// `finally` has run), for a process that must not exit before that (the cgi mode's runner).
const producers = new WeakMap<Readable, Promise<void>>()

/**
 * Settles once the producer behind an object stream's body is closed, after the body was
 * destroyed or ended; at once for any other body.
 */
export function producerClosed(body: Readable): Promise<void> {
  return producers.get(body) ?? Promise.resolve()
}

/** The outcome of a command that returned an async iterable: resolves once its first chunk is known. */
export async function objectStreamOutcome(result: AsyncIterable<unknown>, req: StreamRequest): Promise<Outcome> {
  const marked = (result as { [STREAM_FORMAT]?: { format: 'sse' | 'ndjson'; keepAlive?: number } })[STREAM_FORMAT]
  const source = (marked ? (result as unknown as { source: AsyncIterable<unknown> }).source : result) as AsyncIterable<unknown>
  const it = source[Symbol.asyncIterator]()
  let format: Format | null = marked?.format ?? (wantsEvents(req.headers.accept) ? 'sse' : null)
  const keepAliveMs = marked?.keepAlive ?? SSE_KEEP_ALIVE

  const first = await it.next()
  if (first.done) return { kind: 'body', status: 200, headers: HEADERS[format ?? 'text'], body: '' }
  format ??= typeof first.value === 'string' || first.value instanceof Uint8Array ? 'text' : 'ndjson'
  const firstBytes = encode(format, first.value)
  if (!Buffer.isBuffer(firstBytes)) {
    // Located first: once closed, the generator no longer stands at its yield.
    const bad = await unsendable(source, 1, firstBytes.error, req)
    void Promise.resolve(it.return?.()).catch(() => undefined)
    return { kind: 'error', error: { status: errors.RES_ERR_BAD_RESULT.status, code: 'RES_ERR_BAD_RESULT', message: bad.message, headers: {}, stack: bad.stack } }
  }

  let keepAlive: NodeJS.Timeout | null = null
  let wanted: (() => void) | null = null
  let finished = false
  let closed!: () => void
  const producerDone = new Promise<void>((r) => { closed = r })
  const close = () => {
    if (keepAlive) clearInterval(keepAlive)
    keepAlive = null
    if (!finished) {
      finished = true
      // The generator's finally runs (at its next yield, if it is awaiting something now).
      void Promise.resolve().then(() => it.return?.()).catch(() => undefined).then(() => closed())
    }
  }
  const body = new (stream().Readable)({
    read() { const w = wanted; wanted = null; w?.() },
    destroy(err, cb) { close(); cb(err) },
  })
  const fmt = format
  if (fmt === 'sse' && keepAliveMs > 0) {
    keepAlive = setInterval(() => { if (!body.destroyed) body.push(': keep-alive\n\n') }, keepAliveMs)
    keepAlive.unref()
  }
  body.push(firstBytes)
  const pump = async () => {
    try {
      for (let index = 2; ; index++) {
        const step = await it.next()
        if (body.destroyed) return
        if (step.done) break
        const bytes = encode(fmt, step.value)
        if (!Buffer.isBuffer(bytes)) {
          const bad = await unsendable(source, index, bytes.error, req)
          // The head is out: the error cannot be a status any more. It is logged with the author's
          // line, and the stream ends with a record the client can recognise.
          req.log.error({ err: { type: 'ResidentError', code: 'RES_ERR_BAD_RESULT', message: bad.message, stack: bad.stack } }, bad.message)
          if (body.destroyed) return
          const record = JSON.stringify({ error: { code: 'RES_ERR_BAD_RESULT', message: bad.message, requestId: req.id } })
          if (fmt === 'sse') body.push(`event: error\n${sseField('data', record)}\n`)
          else if (fmt === 'ndjson') body.push(record + '\n')
          break
        }
        if (!body.push(bytes)) await new Promise<void>((r) => { wanted = r })
      }
      close()
      body.push(null)
    } catch (e) {
      finished = true
      closed()
      if (keepAlive) clearInterval(keepAlive)
      body.destroy(e as Error)
    }
  }
  producers.set(body, producerDone)
  void pump()
  return { kind: 'stream', status: 200, headers: HEADERS[fmt], body }
}
