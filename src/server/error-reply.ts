import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import { errors, type ErrorCode } from '../errors.ts'
import { requestLogger } from '../log/request-logger.ts'
import type { ErrorRecord } from '../modes/outcome.ts'
import { errorRecordOf } from '../modes/results.ts'
import { sendErrorRecord } from '../modes/send.ts'

// Fastify's own request errors, in the registry's words.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'RES_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'RES_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'RES_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'RES_ERR_BAD_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'RES_ERR_BAD_BODY',
}

/** Any thrown value → the error record Resident answers with (fastify's request errors mapped to the registry). */
export function normaliseError(e: unknown, development: boolean): ErrorRecord {
  const fe = e as FastifyError
  if (typeof fe?.code === 'string' && fe.code.startsWith('FST_') && typeof fe.statusCode === 'number' && fe.statusCode < 500) {
    const code = FASTIFY_CODES[fe.code] ?? 'RES_ERR_BAD_REQUEST'
    return { status: errors[code].status, code, message: fe.message, headers: {} }
  }
  return errorRecordOf(e, development)
}

const CLIENT_LEFT: ErrorRecord = { status: 400, code: 'RES_ERR_BAD_REQUEST', message: 'the client closed the connection before its request was complete', headers: {} }

function clientLeft(request: FastifyRequest): boolean {
  return request.raw.errored != null && !request.raw.complete
}

/** Fastify's error handler: every failure becomes `{ error: { code, message, requestId } }`. */
export function replyWithError(e: unknown, request: FastifyRequest, reply: FastifyReply, development: boolean, log: PinoLogger): FastifyReply {
  // The client left before its body was complete: the body stream's error is its hang-up, not a
  // failure of Resident's (nor a line at level error), and nobody is left to read the answer.
  const record = clientLeft(request) ? CLIENT_LEFT : normaliseError(e, development)
  if (record.status >= 500) {
    // Why a load failed was logged in full when it failed (the build error with its code frame, or
    // the stack of init()): the request's line only points there, so a failed request is short.
    if (record.code === 'RES_ERR_LOAD_FAILED' || record.code === 'RES_ERR_EXTENSION_FAILED') {
      requestLogger(log, request.id).error(`${request.method} ${request.url} failed: ${record.code} (${errors[record.code].message.toLowerCase()}; why was logged when it failed to load)`)
    } else requestLogger(log, request.id).error({ err: e }, `${request.method} ${request.url} failed: ${record.code}`)
  }
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy()
    return reply
  }
  return sendErrorRecord(reply, record, development)
}
