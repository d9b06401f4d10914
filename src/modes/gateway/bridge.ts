import { IncomingMessage, ServerResponse, type RequestListener } from 'node:http'
import { Writable } from 'node:stream'
import type { GatewayRequestHead } from './env.ts'

/** Where a gateway response goes: the output stream of one gateway request. */
export interface GatewayOutput {
  /** Response bytes (the CGI header block first, then the body). `done` once they may be sent again (backpressure). */
  write(chunks: Buffer[], done: () => void): void
  /** The response is complete. */
  end(): void
  /** The app gave up on the response part-way (it destroyed it): the web server must not take it as complete. */
  abort(): void
}

/** The gateway's own variables of a request (FastCGI PARAMS), on its IncomingMessage: what the web server, not the client, said. */
export const GATEWAY_ENV = Symbol.for('resident.gateway.env')

/** Marks a gateway request that only asks whether the filters authorize it (the FastCGI AUTHORIZER role). */
export const AUTHORIZE_ONLY = Symbol.for('resident.gateway.authorizeOnly')

/** A gateway request in flight: feed it the body, or abort it. */
export interface GatewayExchange {
  /** Body bytes; false when the app wants no more for now (call `resume` when it does). */
  body(chunk: Buffer): boolean
  /** The body is complete. */
  endBody(): void
  /** The web server gave up (ABORT_REQUEST, a closed connection): the app sees the client go. */
  abort(): void
}

const HEAD_END = Buffer.from('\r\n\r\n')
// Hop-by-hop fields of the HTTP framing Node writes; a gateway response has none.
const HOP = /^(?:connection|keep-alive|transfer-encoding):[^\r\n]*\r\n/gim

/** Node's `HTTP/1.1 200 OK` head as a CGI header block: `Status: 200 OK`, hop-by-hop fields dropped. */
export function httpHeadToCgi(head: string): string {
  const lineEnd = head.indexOf('\r\n')
  const status = head.slice(head.indexOf(' ') + 1, lineEnd)
  return `Status: ${status}\r\n${head.slice(lineEnd + 2).replace(HOP, '')}`
}

/**
 * The socket a gateway request's IncomingMessage and ServerResponse believe they have. Node's
 * ServerResponse writes the HTTP head and the body into it; with chunked encoding and keep-alive
 * turned off the body comes as is, so the head is rewritten into a CGI header block and the rest
 * passes through. Addresses come from the gateway's meta-variables.
 */
class GatewaySocket extends Writable {
  remoteAddress: string | undefined
  remotePort: number | undefined
  localAddress: string | undefined
  localPort: number | undefined
  encrypted: boolean | undefined
  remoteFamily: string | undefined
  #head: Buffer | null = Buffer.alloc(0)
  #finished = false
  readonly #out: GatewayOutput
  readonly #translate: (head: string) => string

  constructor(head: GatewayRequestHead, out: GatewayOutput, translate: (head: string) => string) {
    super({ decodeStrings: true })
    this.remoteAddress = head.remoteAddress
    this.remotePort = head.remotePort
    this.localAddress = head.localAddress
    this.localPort = head.localPort
    this.remoteFamily = head.remoteAddress?.includes(':') ? 'IPv6' : 'IPv4'
    if (head.https) this.encrypted = true
    this.#out = out
    this.#translate = translate
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#emit([chunk], cb)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    this.#emit(chunks.map((c) => c.chunk), cb)
  }

  #emit(chunks: Buffer[], cb: () => void): void {
    if (this.#head !== null) {
      // The head is written before any of the body; it may share a chunk with the body's start.
      const all = Buffer.concat([this.#head, ...chunks])
      const end = all.indexOf(HEAD_END)
      if (end < 0) { this.#head = all; cb(); return }
      this.#head = null
      const head = Buffer.from(this.#translate(all.toString('latin1', 0, end + 2)) + '\r\n', 'latin1')
      chunks = end + 4 < all.length ? [head, all.subarray(end + 4)] : [head]
    }
    this.#out.write(chunks, cb)
  }

  setTimeout(): this { return this }
  setNoDelay(): this { return this }
  setKeepAlive(): this { return this }
  ref(): this { return this }
  unref(): this { return this }

  /** The response finished: nothing the app does later (destroying its request) is an abort. */
  finished(): void {
    this.#finished = true
    this.#out.end()
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#finished) { this.#finished = true; this.#out.abort() }
    cb(err)
  }
}

export interface DispatchOptions {
  /** Turns Node's HTTP head into what the gateway sends (default: a CGI header block). */
  translateHead?: (head: string) => string
  /** Only run the filters' authentication (the FastCGI AUTHORIZER role). */
  authorizeOnly?: boolean
  /** The gateway's variables, kept on the request under GATEWAY_ENV. */
  env?: Map<string, string>
}

/**
 * Runs one gateway request through an HTTP request listener (Resident's fastify app), as though
 * it had arrived over HTTP: same routing, filters, errors and streaming. Response bytes go to
 * `out`; the returned exchange takes the body and aborts.
 */
export function dispatchGateway(listener: RequestListener, head: GatewayRequestHead, out: GatewayOutput, options: DispatchOptions = {}): GatewayExchange {
  const socket = new GatewaySocket(head, out, options.translateHead ?? httpHeadToCgi)
  const req = new IncomingMessage(socket as never)
  req.method = head.method
  req.url = head.url
  req.headers = head.headers
  req.httpVersion = head.httpVersion
  req.httpVersionMajor = Number(head.httpVersion[0])
  req.httpVersionMinor = Number(head.httpVersion[2])
  if (options.authorizeOnly) (req as unknown as Record<symbol, boolean>)[AUTHORIZE_ONLY] = true
  if (options.env) (req as unknown as Record<symbol, unknown>)[GATEWAY_ENV] = options.env
  let paused = false
  let onResume: (() => void) | null = null
  req._read = () => { if (paused) { paused = false; onResume?.() } }

  const res = new ServerResponse(req)
  // No chunked framing and no keep-alive: the gateway frames the body itself.
  res.useChunkedEncodingByDefault = false
  res.shouldKeepAlive = false
  res.sendDate = false
  res.assignSocket(socket as never)
  res.once('finish', () => {
    socket.finished()
    res.detachSocket(socket as never)
    process.nextTick(() => {
      res.emit('close')
      // Read what is left of a body nobody wanted, so the gateway's stream is drained.
      if (!req.readableEnded) req.resume()
    })
  })

  let ended = false
  const exchange: GatewayExchange & { onResume: (f: () => void) => void } = {
    body(chunk) {
      if (ended) return true
      const more = req.push(chunk)
      if (!more) paused = true
      return more
    },
    endBody() {
      if (ended) return
      ended = true
      req.complete = true
      req.push(null)
    },
    abort() {
      if (!res.writableFinished) socket.destroy()
      if (!req.destroyed) req.destroy()
    },
    onResume(f) { onResume = f },
  }
  listener(req, res)
  return exchange
}

/** Sets what to call when a paused body may flow again. */
export function onBodyResume(exchange: GatewayExchange, f: () => void): void {
  (exchange as GatewayExchange & { onResume: (f: () => void) => void }).onResume(f)
}
