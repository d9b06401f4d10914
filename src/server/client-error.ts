import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { ErrorCode } from '../errors.ts'
import { nextRequestId, requestIdOf } from './request-id.ts'

type SocketWithResponse = Socket & { _httpMessage?: ServerResponse | null }

/** Sockets to be closed once the response in progress on them ends. */
const closingAfter = new WeakSet<Socket>()

interface Rejection { status: number; reason: string; code: ErrorCode; message: string }

function rejectionFor(err: Error & { code?: string }): Rejection {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      status: 408, reason: 'Request Timeout', code: 'RES_ERR_REQUEST_TIMEOUT',
      message: 'the request did not arrive in time (headersTimeout for the headers, bodyTimeout for the body)',
    }
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, reason: 'Request Header Fields Too Large', code: 'RES_ERR_BAD_REQUEST', message: 'the request headers are larger than the limit' }
  }
  return { status: 400, reason: 'Bad Request', code: 'RES_ERR_BAD_REQUEST', message: `the request is malformed (${err.code ?? 'parse error'})` }
}

/**
 * Requests Node's HTTP layer rejects — a malformed request line, headers over the limit, a request
 * that did not arrive within headersTimeout/bodyTimeout — never reach fastify, or are cut off in
 * the middle: answer them in Resident's error shape, with a request id, and close. Never write into
 * a response already started: a stream in progress would carry a stray error in its body.
 */
export function handleClientError(err: Error & { code?: string }, socket: Socket, log: Logger): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const rejection = rejectionFor(err)
  const res = (socket as SocketWithResponse)._httpMessage ?? null
  if (res !== null) {
    // A response is owed on this connection (the request before a malformed pipelined one, or
    // the one whose body stopped arriving).
    // Its own when the request is still arriving: a body that stopped in time, or whose framing
    // broke (a bad chunk size) after the request was handed over.
    if (!res.headersSent && (rejection.status === 408 || (!res.req.complete && err.code !== 'HPE_INVALID_EOF_STATE' && socket.readable))) {
      answerThrough(res, rejection, log)
      return
    }
    // The client went away mid-request (its end of the connection is closed): nobody is left to
    // read an answer, and whatever runs for it must hear of the close now.
    if (err.code === 'HPE_INVALID_EOF_STATE' || !socket.readable) {
      socket.destroy()
      return
    }
    // Started, or owed to an earlier request: let it finish as it is, then close.
    // Node's parser raises the error again for every chunk that arrives after it: close once.
    if (closingAfter.has(socket)) return
    closingAfter.add(socket)
    log.debug({ code: err.code }, 'client error while a response was in progress; closing after it')
    res.shouldKeepAlive = false
    if (res.writableFinished) socket.destroy()
    else res.once('close', () => socket.destroy())
    return
  }
  const requestId = nextRequestId()
  const body = JSON.stringify({ error: { code: rejection.code, message: rejection.message, requestId } })
  log.debug({ requestId, code: err.code }, rejection.status === 408 ? 'the request did not arrive in time' : 'rejected a malformed request')
  socket.end(
    `HTTP/1.1 ${rejection.status} ${rejection.reason}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/** A 408 (or 400) for a request that reached Resident: sent through its own response, under its own id. */
function answerThrough(res: ServerResponse, rejection: Rejection, log: Logger): void {
  const requestId = requestIdOf(res.req) ?? nextRequestId()
  const body = JSON.stringify({ error: { code: rejection.code, message: rejection.message, requestId } })
  log.info({ requestId, url: res.req.url }, `${res.req.method} ${res.req.url}: ${rejection.status === 408 ? 'the body did not arrive in time' : rejection.message} (${rejection.status})`)
  res.shouldKeepAlive = false
  res.writeHead(rejection.status, {
    'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close',
  })
  res.end(body, () => res.socket?.destroy())
}

