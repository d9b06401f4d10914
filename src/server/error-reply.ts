import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import { errors, isResidentError, type ErrorCode } from '../errors.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { isHttpError } from '../sdk/http-error.ts'
import { requestLogger } from './lazy-logger.ts'

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; data?: unknown; stack?: string }
}

// Fastify's own request errors, in the registry's words.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'RES_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'RES_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'RES_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'RES_ERR_BAD_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'RES_ERR_BAD_BODY',
}

export interface NormalisedError {
  status: number
  code: string
  message: string
  data?: unknown
  headers: Record<string, string>
  /** True for failures of the server or an extension (5xx), which are logged with their stack. */
  internal: boolean
}

/** Any thrown value → the status, code and client-safe message Resident answers with. */
export function normaliseError(e: unknown, development: boolean): NormalisedError {
  if (isResidentError(e)) return { status: e.status, code: e.code, message: e.message, data: e.data, headers: e.headers, internal: e.status >= 500 }
  if (isHttpError(e)) return { status: e.status, code: e.code, message: e.message, data: e.data, headers: e.headers, internal: e.status >= 500 }
  const fe = e as FastifyError
  if (typeof fe?.code === 'string' && fe.code.startsWith('FST_') && typeof fe.statusCode === 'number' && fe.statusCode < 500) {
    const code = FASTIFY_CODES[fe.code] ?? 'RES_ERR_BAD_REQUEST'
    return { status: errors[code].status, code, message: fe.message, headers: {}, internal: false }
  }
  const message = development && e instanceof Error ? e.message : errors.RES_ERR_COMMAND_FAILED.message
  return { status: 500, code: 'RES_ERR_COMMAND_FAILED', message, headers: {}, internal: true }
}

export function errorBody(n: NormalisedError, requestId: string, e: unknown, development: boolean): ErrorBody {
  const body: ErrorBody = { error: { code: n.code, message: n.message, requestId } }
  if (n.data !== undefined) body.error.data = n.data
  if (development && n.internal && e instanceof Error && e.stack) body.error.stack = mapErrorStack(e).stack
  return body
}

/** Fastify's error handler: every failure becomes `{ error: { code, message, requestId } }`. */
export function replyWithError(e: unknown, request: FastifyRequest, reply: FastifyReply, development: boolean, log: PinoLogger): FastifyReply {
  const n = normaliseError(e, development)
  if (n.internal) {
    // Why a load failed was logged in full when it failed (the build error with its code frame, or
    // the stack of init()): the request's line only points there, so a failed request is short.
    if (n.code === 'RES_ERR_LOAD_FAILED' || n.code === 'RES_ERR_EXTENSION_FAILED') {
      requestLogger(log, request.id).error(`${request.method} ${request.url} failed: ${n.code} (${errors[n.code].message.toLowerCase()}; why was logged when it failed to load)`)
    } else requestLogger(log, request.id).error({ err: mapErrorStack(e) }, `${request.method} ${request.url} failed: ${n.code}`)
  }
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy()
    return reply
  }
  for (const [k, v] of Object.entries(n.headers)) reply.header(k, v)
  return reply.code(n.status).type('application/json; charset=utf-8').send(JSON.stringify(errorBody(n, request.id, e, development)))
}
