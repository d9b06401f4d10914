import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { headersProblem } from '../headers.ts'
import type { ErrorRecord, Outcome } from './outcome.ts'

/** The JSON body of every error Resident answers with. */
export interface ErrorBody {
  error: { code: string; message: string; requestId: string; data?: unknown; stack?: string }
}

export type LateStreamError<T> = (of: T, e: Error) => void

export function errorBody(record: ErrorRecord, requestId: string, development: boolean): ErrorBody {
  const body: ErrorBody = { error: { code: record.code, message: record.message, requestId } }
  if (record.data !== undefined) body.error.data = record.data
  if (development && record.status >= 500 && record.stack) body.error.stack = record.stack
  return body
}

/** Sends an error record as Resident's JSON error body (the caller has checked nothing was sent yet). */
export function sendErrorRecord(reply: FastifyReply, given: ErrorRecord, development: boolean): FastifyReply {
  // The last check before a head is written, for records that came from another thread or process.
  const problem = headersProblem(given.headers)
  const record: ErrorRecord = problem === null ? given : { status: 500, code: 'RES_ERR_BAD_HEADER', message: `${problem} (in an error with code ${given.code})`, headers: {} }
  for (const k in record.headers) reply.header(k, record.headers[k]!)
  return reply.code(record.status).type('application/json; charset=utf-8').send(JSON.stringify(errorBody(record, reply.request.id, development)))
}

/**
 * Sends an outcome: the one place where what a command produced, in any mode, becomes HTTP.
 * `onLateStreamError(of, e)` hears of a streamed body that fails after its headers went out (the
 * client then sees it cut off; one that fails before them is answered by the error handler). A
 * function and its argument rather than a closure: a body sent whole allocates nothing.
 */
export function sendOutcome<T>(reply: FastifyReply, outcome: Outcome, development: boolean, onLateStreamError?: LateStreamError<T>, of?: T): FastifyReply {
  if (outcome.kind === 'error') return sendErrorRecord(reply, outcome.error, development)
  // 200 is the reply's default: fastify's code() validates, so the common case skips it.
  if (outcome.status !== 200) reply.code(outcome.status)
  const headers = outcome.headers
  for (const k in headers) reply.header(k, headers[k]!)
  if (outcome.kind === 'stream') return stream(reply, outcome.body, onLateStreamError, of)
  const body = outcome.body
  if (body === null || typeof body === 'string') return reply.send(body ?? undefined)
  return reply.send(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength))
}

function stream<T>(reply: FastifyReply, body: Readable, onLateError: LateStreamError<T> | undefined, of: T | undefined): FastifyReply {
  // Listening before fastify does: once fastify's listener has run, an early failure's 500 has
  // been sent and headersSent no longer tells early from late.
  if (onLateError) body.once('error', (e: Error) => { if (reply.raw.headersSent) onLateError(of as T, e) })
  return reply.send(body)
}
