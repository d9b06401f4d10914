import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import { ResidentError } from '../errors.ts'

function isAsyncIterable(v: object): v is AsyncIterable<unknown> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
}

function isWebResponse(v: object): v is Response {
  return v instanceof Response ||
    (Object.prototype.toString.call(v) === '[object Response]' && typeof (v as Response).status === 'number')
}

/**
 * Sends what a command returned: object or array → JSON; string → text; bytes → octet-stream;
 * Readable or async iterable → streamed; web Response → its status, headers and body;
 * undefined → 204. Returns the stream being sent when the body is streamed, else null.
 */
export function sendResult(reply: FastifyReply, result: unknown): Readable | null {
  if (result === undefined) { reply.code(204).send(); return null }
  if (typeof result === 'string') {
    if (!reply.hasHeader('content-type')) reply.type('text/plain; charset=utf-8')
    reply.send(result)
    return null
  }
  if (typeof result !== 'object' || result === null) {
    if (typeof result === 'bigint' || typeof result === 'function' || typeof result === 'symbol') {
      throw new ResidentError('RES_ERR_BAD_RESULT', `a command cannot return a ${typeof result}`)
    }
    reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
    return null
  }
  // Plain objects and arrays, the common case, skip the checks for the other kinds.
  const proto = Object.getPrototypeOf(result)
  if (proto === Object.prototype || proto === null || Array.isArray(result)) {
    reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
    return null
  }
  if (ArrayBuffer.isView(result) || result instanceof ArrayBuffer) {
    const buf = result instanceof ArrayBuffer ? Buffer.from(result) : Buffer.from(result.buffer, result.byteOffset, result.byteLength)
    if (!reply.hasHeader('content-type')) reply.type('application/octet-stream')
    reply.send(buf)
    return null
  }
  if (isWebResponse(result)) {
    reply.code(result.status)
    for (const [k, v] of result.headers) {
      if (k === 'set-cookie') continue
      reply.header(k, v)
    }
    const cookies = result.headers.getSetCookie?.() ?? []
    if (cookies.length > 0) reply.header('set-cookie', cookies)
    if (result.body === null) { reply.send(); return null }
    return stream(reply, Readable.fromWeb(result.body as import('node:stream/web').ReadableStream))
  }
  if (result instanceof Readable) {
    if (!reply.hasHeader('content-type')) reply.type('application/octet-stream')
    return stream(reply, result)
  }
  if (isAsyncIterable(result)) {
    if (!reply.hasHeader('content-type')) reply.type('text/plain; charset=utf-8')
    return stream(reply, Readable.from(result))
  }
  reply.type('application/json; charset=utf-8').send(JSON.stringify(result))
  return null
}

function stream(reply: FastifyReply, body: Readable): Readable {
  reply.send(body)
  return body
}
