import { SSE_EVENT, STREAM_FORMAT } from './brand.ts'

/** One Server-Sent Event with its fields; yield it from a stream sent as SSE. */
export class ServerSentEvent {
  readonly [SSE_EVENT] = true
  readonly data: unknown
  readonly event?: string
  readonly id?: string
  readonly retry?: number
  constructor(init: { data: unknown; event?: string; id?: string; retry?: number }) {
    this.data = init.data
    if (init.event !== undefined) this.event = init.event
    if (init.id !== undefined) this.id = init.id
    if (init.retry !== undefined) this.retry = init.retry
  }
}

export interface EventStreamOptions {
  /** Milliseconds between keep-alive comments while no event is due (default 15000; 0 = none). */
  keepAlive?: number
}

/** An async iterable marked to be sent in one format whatever the client's Accept header says. */
export interface FormattedStream<T> extends AsyncIterable<T> {
  readonly [STREAM_FORMAT]: { format: 'sse' | 'ndjson'; keepAlive?: number }
}

class MarkedStream<T> implements FormattedStream<T> {
  readonly [STREAM_FORMAT]: { format: 'sse' | 'ndjson'; keepAlive?: number }
  /** The source itself, so the host can tell where a generator stopped. */
  readonly source: AsyncIterable<T>
  constructor(source: AsyncIterable<T>, format: 'sse' | 'ndjson', keepAlive?: number) {
    this.source = source
    this[STREAM_FORMAT] = { format, keepAlive }
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.source[Symbol.asyncIterator]()
  }
}

function mark<T>(source: AsyncIterable<T>, format: 'sse' | 'ndjson', keepAlive?: number): FormattedStream<T> {
  return new MarkedStream(source, format, keepAlive)
}

/**
 * Sends the objects `source` yields as Server-Sent Events (`text/event-stream`), with keep-alive
 * comments. Without it, a stream of objects is NDJSON unless the client asks for text/event-stream.
 * @example
 * async *ticks() { return sse(this.#ticks(), { keepAlive: 10_000 }) }
 * // yield { n: 1 } → "data: {"n":1}\n\n"; yield new ServerSentEvent({ event: 'done', data: 'x' })
 */
export function sse<T>(source: AsyncIterable<T>, options: EventStreamOptions = {}): FormattedStream<T> {
  return mark(source, 'sse', options.keepAlive)
}

/** Sends the objects `source` yields as NDJSON (`application/x-ndjson`), one JSON text per line. */
export function ndjson<T>(source: AsyncIterable<T>): FormattedStream<T> {
  return mark(source, 'ndjson')
}
