import type { Readable } from 'node:stream'

/** Response headers as an outcome carries them: lower-case names; `set-cookie` may be a list. */
export type OutcomeHeaders = Record<string, string | string[]>

/**
 * The failure a request is answered with: what the client's JSON error body says. Plain data, so
 * it crosses any boundary with its status and headers intact (an `HttpError` sent through a
 * `MessagePort` as an Error would arrive with neither).
 */
export interface ErrorRecord {
  status: number
  /** A `RES_ERR_*` code, or an `HttpError`'s own code. */
  code: string
  /** Safe to show the client (an unexpected throw's own message only in development). */
  message: string
  data?: unknown
  headers: Record<string, string>
  /** The failure's stack, mapped to the sources: for the host's log, and the body in development. */
  stack?: string
}

/**
 * What a command produced, ready to send. The response code only ever sends these.
 * - `body`: the whole body, bytes or text (a string is sent as its UTF-8 bytes);
 * - `stream`: a body that arrives in byte chunks with backpressure: a Node `Readable` the
 *   response pulls from, so a slow client slows the producer down (chunks are bytes; strings
 *   are UTF-8). An executor that crosses a boundary feeds it under a credit window;
 * - `error`: an error record, sent as Resident's JSON error body.
 */
export type Outcome =
  | { kind: 'body'; status: number; headers: OutcomeHeaders; body: Uint8Array | string | null }
  | { kind: 'stream'; status: number; headers: OutcomeHeaders; body: Readable }
  | { kind: 'error'; error: ErrorRecord }

export type StreamOutcome = Extract<Outcome, { kind: 'stream' }>

/** An error outcome. */
export function errorOutcome(error: ErrorRecord): Outcome {
  return { kind: 'error', error }
}
