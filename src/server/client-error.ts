import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { nextRequestId } from './request-id.ts'

/**
 * Requests Node's HTTP parser rejects (a malformed request line, headers over the limit) never
 * reach fastify: answer them in Resident's error shape, with a request id, and close.
 */
export function handleClientError(err: Error & { code?: string }, socket: Socket, log: Logger): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const status = tooLarge ? 431 : 400
  const requestId = nextRequestId()
  const body = JSON.stringify({
    error: {
      code: 'RES_ERR_BAD_REQUEST',
      message: tooLarge ? 'the request headers are larger than the limit' : `the request is malformed (${err.code ?? 'parse error'})`,
      requestId,
    },
  })
  log.debug({ requestId, code: err.code }, 'rejected a malformed request')
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}
