import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'

/** A command's result as an HTTP response, without fastify: what a CGI program writes. */
export interface ResponseParts {
  status: number
  headers: Array<[string, string]>
  /** Bytes, a stream of chunks, or null for none. */
  body: Uint8Array | AsyncIterable<Uint8Array | string> | null
}

const JSON_TYPE = 'application/json; charset=utf-8'

function isAsyncIterable(v: object): v is AsyncIterable<unknown> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
}

// The tag, not `instanceof Response`: reading the global Response makes Node load undici (tens of
// ms, most of a CGI process's own cost), which a command that returns JSON never needs.
function isWebResponse(v: object): v is Response {
  return Object.prototype.toString.call(v) === '[object Response]' && typeof (v as Response).status === 'number'
}

/** Reason phrases (node:http's STATUS_CODES would load the HTTP stack into every CGI process). */
const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content',
  301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
}

/** Thrown for results that cannot be sent (the caller answers RES_ERR_BAD_RESULT). */
export class BadResultError extends Error {
  override name = 'BadResultError'
}

/**
 * The same mapping the in-process executor applies (modes/results.ts): object or array →
 * JSON; string → text; bytes → octet-stream; Readable or async iterable → streamed; web Response →
 * its status, headers and body; undefined → 204.
 */
export function resultParts(result: unknown): ResponseParts {
  if (result === undefined) return { status: 204, headers: [], body: null }
  if (typeof result === 'string') return { status: 200, headers: [['content-type', 'text/plain; charset=utf-8']], body: Buffer.from(result) }
  if (typeof result !== 'object' || result === null) {
    if (typeof result === 'bigint' || typeof result === 'function' || typeof result === 'symbol') throw new BadResultError(`a command cannot return a ${typeof result}`)
    return { status: 200, headers: [['content-type', JSON_TYPE]], body: Buffer.from(JSON.stringify(result)) }
  }
  if (ArrayBuffer.isView(result) || result instanceof ArrayBuffer) {
    const buf = result instanceof ArrayBuffer ? Buffer.from(result) : Buffer.from(result.buffer, result.byteOffset, result.byteLength)
    return { status: 200, headers: [['content-type', 'application/octet-stream']], body: buf }
  }
  if (isWebResponse(result)) {
    const headers: Array<[string, string]> = []
    for (const [k, v] of result.headers) if (k !== 'set-cookie') headers.push([k, v])
    for (const c of result.headers.getSetCookie?.() ?? []) headers.push(['set-cookie', c])
    return { status: result.status, headers, body: result.body === null ? null : Readable.fromWeb(result.body as import('node:stream/web').ReadableStream) }
  }
  if (result instanceof Readable) return { status: 200, headers: [['content-type', 'application/octet-stream']], body: result }
  if (isAsyncIterable(result)) return { status: 200, headers: [['content-type', 'text/plain; charset=utf-8']], body: result as AsyncIterable<Uint8Array | string> }
  let json: string
  try {
    json = JSON.stringify(result)
  } catch (e) {
    throw new BadResultError(`the command's result cannot be sent: ${(e as Error).message}`)
  }
  return { status: 200, headers: [['content-type', JSON_TYPE]], body: Buffer.from(json) }
}

/** `Status: 200 OK` and the headers, then the blank line, with LF line ends (RFC 3875 §6). */
export function formatCgiHead(status: number, headers: ReadonlyArray<readonly [string, string]>): string {
  let out = `Status: ${status} ${REASONS[status] ?? 'Status'}\n`
  for (const [k, v] of headers) {
    // A value with a line end would end the head early or add a header: never written.
    if (/[\r\n\0]/.test(k) || /[\r\n\0]/.test(v)) continue
    out += `${k}: ${v}\n`
  }
  return out + '\n'
}
