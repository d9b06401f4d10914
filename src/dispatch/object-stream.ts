import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import { SSE_EVENT, STREAM_FORMAT } from '../sdk/brand.ts'

// A command's async iterable, sent as it yields. Strings and bytes go out as they are (text);
// anything else is an object stream: NDJSON (application/x-ndjson), one JSON text per line, or
// Server-Sent Events (text/event-stream) when the client asks for them or the command returned
// sse(…). The format is chosen at the first chunk (the head is written with it), SSE gets a
// keep-alive comment whenever no event was sent for a while, and the source is closed (its
// `finally` runs) as soon as the client leaves. A chunk that cannot be sent ends the stream with an
// error record, and is reported with the place of the `yield` that produced it.

export type Format = 'text' | 'ndjson' | 'sse'

export interface BadChunk {
  /** Which chunk (1 = the first). */
  index: number
  reason: string
  /** The iterable the command returned (a generator can tell where it stopped). */
  source: object
}

export interface ObjectStreamOptions {
  /** The request's Accept header. */
  accept: string | undefined
  /** Sets the response's content type once the format is known (before the first byte). */
  setType(type: string): void
  /** Called when a chunk cannot be sent; resolves with the error that ends the stream. */
  onBadChunk(bad: BadChunk): Promise<Error & { code?: string }>
  /** The request id, for the error record that ends a stream already under way. */
  requestId: string
  defaultKeepAlive: number
}

const TYPES: Record<Format, string> = {
  text: 'text/plain; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  sse: 'text/event-stream; charset=utf-8',
}

function wantsEvents(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept)
}

/** JSON of a chunk, or why there is none. */
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

/** True for what a command may return to stream. */
export function isAsyncIterable(v: object): v is AsyncIterable<unknown> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
}

/** The readable body for `result`, an async iterable a command returned. */
export function objectStream(result: AsyncIterable<unknown>, o: ObjectStreamOptions): Readable {
  const marked = (result as { [STREAM_FORMAT]?: { format: 'sse' | 'ndjson'; keepAlive?: number } })[STREAM_FORMAT]
  const source = (marked ? (result as unknown as { source: AsyncIterable<unknown> }).source : result) as AsyncIterable<unknown>
  const it = source[Symbol.asyncIterator]()
  let format: Format | null = marked?.format ?? (wantsEvents(o.accept) ? 'sse' : null)
  const keepAliveMs = marked?.keepAlive ?? o.defaultKeepAlive
  let keepAlive: NodeJS.Timeout | null = null
  let wanted: (() => void) | null = null
  let finished = false
  let index = 0
  let sent = false

  const close = () => {
    if (keepAlive) clearInterval(keepAlive)
    keepAlive = null
    if (!finished) {
      finished = true
      // The generator's finally runs (at its next yield, if it is awaiting something now).
      void Promise.resolve().then(() => it.return?.()).catch(() => undefined)
    }
  }
  const body = new Readable({
    read() { const w = wanted; wanted = null; w?.() },
    destroy(err, cb) { close(); cb(err) },
  })
  const start = (f: Format) => {
    format = f
    o.setType(TYPES[f])
    if (f === 'sse' && keepAliveMs > 0) {
      keepAlive = setInterval(() => { if (!body.destroyed) body.push(': keep-alive\n\n') }, keepAliveMs)
      keepAlive.unref()
    }
  }
  if (format === 'sse') start('sse')

  const pump = async () => {
    try {
      for (;;) {
        const step = await it.next()
        if (body.destroyed) return
        if (step.done) break
        index++
        const value = step.value
        if (format === null) start(typeof value === 'string' || value instanceof Uint8Array ? 'text' : 'ndjson')
        const bytes = encode(format!, value)
        if (!Buffer.isBuffer(bytes)) {
          const err = await o.onBadChunk({ index, reason: bytes.error, source })
          if (body.destroyed) return
          // Nothing sent yet: the error handler answers with a status and Resident's JSON error.
          if (!sent) throw err
          const record = JSON.stringify({ error: { code: err.code ?? 'RES_ERR_BAD_RESULT', message: err.message, requestId: o.requestId } })
          if (format === 'sse') body.push(`event: error\n${sseField('data', record)}\n`)
          else if (format === 'ndjson') body.push(record + '\n')
          break
        }
        sent = true
        if (!body.push(bytes)) await new Promise<void>((r) => { wanted = r })
      }
      if (format === null) start(wantsEvents(o.accept) ? 'sse' : 'text')
      close()
      body.push(null)
    } catch (e) {
      finished = true
      if (keepAlive) clearInterval(keepAlive)
      body.destroy(e as Error)
    }
  }
  void pump()
  return body
}
