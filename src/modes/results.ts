import type { Readable } from 'node:stream'
import { errors, isResidentError } from '../errors.ts'
import { lazyBuiltin } from '../loader/builtin.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { FRAMING_HEADERS, headersProblem } from '../headers.ts'
import { isHttpError } from '../sdk/http-error.ts'
import { isAsyncIterable, objectStreamOutcome, type StreamRequest } from './object-stream.ts'
import type { ErrorRecord, Outcome, OutcomeHeaders } from './outcome.ts'

const stream = lazyBuiltin<typeof import('node:stream')>('node:stream')

/** A Node Readable. node:stream is loaded only for a value that could be one (a process per request need not load it). */
function isReadable(v: object): v is Readable {
  return typeof (v as { pipe?: unknown }).pipe === 'function' && v instanceof stream().Readable
}

// Shared header sets: the common results allocate no header object of their own. Never mutated
// (not frozen: a frozen object's keys are slower to walk on every response).
const JSON_HEADERS: OutcomeHeaders = { 'content-type': 'application/json; charset=utf-8' }
const TEXT_HEADERS: OutcomeHeaders = { 'content-type': 'text/plain; charset=utf-8' }
const BYTES_HEADERS: OutcomeHeaders = { 'content-type': 'application/octet-stream' }
const NO_HEADERS: OutcomeHeaders = {}
const NO_CONTENT: Outcome = Object.freeze({ kind: 'body', status: 204, headers: NO_HEADERS, body: null })


function isWebResponse(v: object): v is Response {
  return v instanceof Response ||
    (Object.prototype.toString.call(v) === '[object Response]' && typeof (v as Response).status === 'number')
}

function json(result: unknown): Outcome {
  return { kind: 'body', status: 200, headers: JSON_HEADERS, body: JSON.stringify(result) }
}

/**
 * What a command returned → its outcome: the one producer every executor uses, so an extension
 * answers the same in every mode. Object, array, number, boolean or null → JSON; string → text;
 * bytes → octet-stream; Readable → a streamed body; an async iterable → text, NDJSON or
 * Server-Sent Events, decided by its first chunk and the request's Accept (object-stream.ts);
 * web Response → its status, headers and body; undefined → 204; a promise → the outcome of what
 * it settles to (a rejection → its error record). Something that cannot be sent (a function, a
 * bigint, a circular object) is a RES_ERR_BAD_RESULT error outcome.
 */
export function commandOutcome(result: unknown, request: StreamRequest, development: boolean): Outcome | Promise<Outcome> {
  if (typeof result === 'object' && result !== null && Object.getPrototypeOf(result) !== Object.prototype) {
    if (typeof (result as { then?: unknown }).then === 'function') {
      return Promise.resolve(result).then(
        (value) => commandOutcome(value, request, development),
        (e: unknown): Outcome => ({ kind: 'error', error: errorRecordOf(e, development) }))
    }
    if (!isReadable(result) && !isWebResponse(result) && isAsyncIterable(result)) {
      return objectStreamOutcome(result, request).catch((e: unknown): Outcome => ({ kind: 'error', error: errorRecordOf(e, development) }))
    }
  }
  try {
    return convert(result)
  } catch (e) {
    return badResult(`the command's result cannot be sent: ${(e as Error).message}`)
  }
}

function convert(result: unknown): Outcome {
  if (result === undefined) return NO_CONTENT
  if (typeof result === 'string') return { kind: 'body', status: 200, headers: TEXT_HEADERS, body: result }
  if (typeof result !== 'object' || result === null) {
    if (typeof result === 'bigint' || typeof result === 'function' || typeof result === 'symbol') {
      return badResult(`a command cannot return a ${typeof result}`)
    }
    return json(result)
  }
  // Plain objects and arrays, the common case, skip the checks for the other kinds.
  const proto = Object.getPrototypeOf(result)
  if (proto === Object.prototype || proto === null || Array.isArray(result)) return json(result)
  if (ArrayBuffer.isView(result)) {
    return { kind: 'body', status: 200, headers: BYTES_HEADERS, body: new Uint8Array(result.buffer, result.byteOffset, result.byteLength) }
  }
  if (result instanceof ArrayBuffer) return { kind: 'body', status: 200, headers: BYTES_HEADERS, body: new Uint8Array(result) }
  if (isWebResponse(result)) return fromWebResponse(result)
  if (isReadable(result)) return { kind: 'stream', status: 200, headers: BYTES_HEADERS, body: result }
  return json(result)
}

/**
 * A web Response → its status, headers (every Set-Cookie kept) and body. Never its framing
 * headers (content-length, transfer-encoding, connection…): a declared length that does not match
 * the body would cut it short or hang the client, so the body's real length is measured, or it
 * goes chunked.
 */
export function fromWebResponse(res: Response): Outcome {
  const headers: OutcomeHeaders = {}
  for (const [k, v] of res.headers) if (k !== 'set-cookie' && !FRAMING_HEADERS.has(k)) headers[k] = v
  const cookies = res.headers.getSetCookie?.() ?? []
  if (cookies.length > 0) headers['set-cookie'] = cookies
  if (res.body === null) return { kind: 'body', status: res.status, headers, body: null }
  return { kind: 'stream', status: res.status, headers, body: stream().Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) }
}

function badResult(message: string): Outcome {
  return { kind: 'error', error: { status: errors.RES_ERR_BAD_RESULT.status, code: 'RES_ERR_BAD_RESULT', message, headers: {} } }
}

/**
 * Any thrown value → the error record the client is answered with. An `HttpError` (from any copy
 * of the SDK) and a ResidentError keep their status, code, message, data and headers; anything
 * else is a 500 RES_ERR_COMMAND_FAILED whose own message reaches the client only in development.
 * Failures (5xx) carry their mapped stack for the log.
 */
export function errorRecordOf(e: unknown, development: boolean): ErrorRecord {
  if (isResidentError(e) || isHttpError(e)) {
    const headers = isResidentError(e) ? { ...e.headers } : extensionHeaders(e.headers)
    // A header Node cannot send (a CR or LF from extension or filter code) would fail only once
    // the head is written, too late for Resident's own answer: it is the extension's fault, a 500.
    const problem = headersProblem(headers)
    if (problem !== null) {
      return {
        status: 500, code: 'RES_ERR_BAD_HEADER', message: `${problem} (in an HttpError with code ${e.code})`, headers: {},
        stack: typeof e.stack === 'string' ? mapErrorStack(e).stack : undefined,
      }
    }
    const record: ErrorRecord = { status: e.status, code: e.code, message: e.message, headers }
    if (e.data !== undefined) record.data = e.data
    if (e.status >= 500 && typeof e.stack === 'string') record.stack = mapErrorStack(e).stack
    return record
  }
  const message = development && e instanceof Error ? e.message : errors.RES_ERR_COMMAND_FAILED.message
  const record: ErrorRecord = { status: 500, code: 'RES_ERR_COMMAND_FAILED', message, headers: {} }
  record.stack = e instanceof Error && typeof e.stack === 'string' ? mapErrorStack(e).stack : `thrown: ${describe(e)}`
  return record
}

/** An HttpError's headers without the framing ones, which are the server's to set. */
function extensionHeaders(given: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of Object.keys(given)) if (!FRAMING_HEADERS.has(k.toLowerCase())) out[k] = given[k]!
  return out
}

function describe(v: unknown): string {
  try { return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v) } catch { return String(v) }
}

