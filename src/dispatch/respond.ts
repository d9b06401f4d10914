import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { ResidentError } from '../errors.ts'
import { suspendedAt } from '../loader/generator-location.ts'
import { isAsyncIterable, objectStream, type BadChunk } from './object-stream.ts'

export type LateStreamError<T> = (of: T, e: Error) => void

/** Milliseconds between SSE keep-alive comments unless sse(…, { keepAlive }) says otherwise. */
const SSE_KEEP_ALIVE = 15_000

function isWebResponse(v: object): v is Response {
  return v instanceof Response ||
    (Object.prototype.toString.call(v) === '[object Response]' && typeof (v as Response).status === 'number')
}

/**
 * Sends what a command returned: object or array → JSON; string → text; bytes → octet-stream;
 * Readable or async iterable → streamed; web Response → its status, headers and body;
 * undefined → 204. `onLateStreamError(of, e)` hears of a streamed body that fails after its headers
 * went out (the client then sees it cut off; one that fails before them is answered by the error
 * handler). A function and its argument rather than a closure: a body sent whole allocates nothing.
 */
export function sendResult<T>(reply: FastifyReply, result: unknown, onLateStreamError?: LateStreamError<T>, of?: T): FastifyReply {
  if (result === undefined) return reply.code(204).send()
  if (typeof result === 'string') {
    if (!reply.hasHeader('content-type')) reply.type('text/plain; charset=utf-8')
    return reply.send(result)
  }
  if (typeof result !== 'object' || result === null) {
    if (typeof result === 'bigint' || typeof result === 'function' || typeof result === 'symbol') {
      throw new ResidentError('RES_ERR_BAD_RESULT', `a command cannot return a ${typeof result}`)
    }
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
  }
  // Plain objects and arrays, the common case, skip the checks for the other kinds.
  const proto = Object.getPrototypeOf(result)
  if (proto === Object.prototype || proto === null || Array.isArray(result)) {
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
  }
  if (ArrayBuffer.isView(result) || result instanceof ArrayBuffer) {
    const buf = result instanceof ArrayBuffer ? Buffer.from(result) : Buffer.from(result.buffer, result.byteOffset, result.byteLength)
    if (!reply.hasHeader('content-type')) reply.type('application/octet-stream')
    return reply.send(buf)
  }
  if (isWebResponse(result)) {
    reply.code(result.status)
    for (const [k, v] of result.headers) {
      if (k === 'set-cookie') continue
      reply.header(k, v)
    }
    const cookies = result.headers.getSetCookie?.() ?? []
    if (cookies.length > 0) reply.header('set-cookie', cookies)
    if (result.body === null) return reply.send()
    return stream(reply, Readable.fromWeb(result.body as import('node:stream/web').ReadableStream), onLateStreamError, of)
  }
  if (result instanceof Readable) {
    if (!reply.hasHeader('content-type')) reply.type('application/octet-stream')
    return stream(reply, result, onLateStreamError, of)
  }
  if (isAsyncIterable(result)) {
    const typed = reply.hasHeader('content-type')
    const body = objectStream(result, {
      accept: reply.request.headers.accept,
      requestId: String(reply.request.id),
      defaultKeepAlive: SSE_KEEP_ALIVE,
      // The head is written with the first chunk, so the type can still be set then.
      setType: (type) => { if (!typed && !reply.raw.headersSent) reply.raw.setHeader('content-type', type) },
      onBadChunk: (bad) => badChunk(reply, bad, onLateStreamError, of),
    })
    return stream(reply, body, onLateStreamError, of)
  }
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
}

/** The error a chunk that cannot be sent ends its stream with; logged with the line of its `yield`. */
async function badChunk<T>(reply: FastifyReply, bad: BadChunk, onLateError: LateStreamError<T> | undefined, of: T | undefined): Promise<ResidentError> {
  const where = await suspendedAt(bad.source)
  const url = reply.request.url.split('?')[0]
  const err = new ResidentError('RES_ERR_BAD_RESULT', `chunk ${bad.index} of the stream from ${url} cannot be sent: ${bad.reason}`)
  // The author's `yield` is the frame that matters; the host's own frames would only hide it.
  err.stack = `${err.name} [${err.code}]: ${err.message}\n    at ${where ?? 'the command\'s stream (the line of its yield is not known)'}`
  // Once the stream is under way the error cannot become a response: it is logged here.
  if (reply.raw.headersSent || bad.index > 1) onLateError?.(of as T, err)
  return err
}

function stream<T>(reply: FastifyReply, body: Readable, onLateError: LateStreamError<T> | undefined, of: T | undefined): FastifyReply {
  // Listening before fastify does: once fastify's listener has run, an early failure's 500 has
  // been sent and headersSent no longer tells early from late.
  if (onLateError) body.once('error', (e: Error) => { if (reply.raw.headersSent) onLateError(of as T, e) })
  return reply.send(body)
}
