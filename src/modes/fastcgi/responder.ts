import type { RequestListener } from 'node:http'
import type { Socket } from 'node:net'
import { dispatchGateway, onBodyResume, type GatewayExchange, type GatewayOutput } from '../gateway/bridge.ts'
import { requestFromEnv } from '../gateway/env.ts'
import { decodePairs, encodePairs, PairCollector } from './pairs.ts'
import {
  decodeBeginRequest, encodeEndRequest, encodeRecord, encodeStream, encodeUnknownType, FastCgiProtocolError, ProtocolStatus,
  RecordReader, Role, Type, type FcgiRecord,
} from './records.ts'

export interface ResponderOptions {
  /** Answers FCGI_MAX_CONNS and FCGI_MAX_REQS in GET_VALUES_RESULT. */
  maxConns: number
  /** Largest PARAMS stream one request may send, in bytes. */
  maxParams: number
  /** Called with what went wrong on a connection that had to be closed (a protocol error). */
  onProtocolError?: (e: Error, socket: Socket) => void
  /** Called when a request starts and ends (status pages, recycling after N requests). */
  onRequest?: (event: 'start' | 'end', info: { method: string; url: string }) => void
}

interface Active {
  id: number
  role: number
  keepConn: boolean
  params: PairCollector | null
  exchange: GatewayExchange | null
  /** END_REQUEST has been sent (or the request was aborted): later output is dropped. */
  done: boolean
  /** Method and URL, for onRequest. */
  info: { method: string; url: string } | null
}

/**
 * One FastCGI connection from a web server, answered as a Responder (and an Authorizer) by an
 * HTTP request listener. Requests on a connection come one at a time: a second id while one is
 * active gets CANT_MPX_CONN (GET_VALUES says FCGI_MPXS_CONNS=0, as nginx, Apache and PHP expect).
 */
export class ResponderConnection {
  readonly #socket: Socket
  readonly #listener: RequestListener
  readonly #options: ResponderOptions
  readonly #reader = new RecordReader()
  #active: Active | null = null
  #corked = false
  #closed = false
  #ended = false

  constructor(socket: Socket, listener: RequestListener, options: ResponderOptions) {
    this.#socket = socket
    this.#listener = listener
    this.#options = options
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('end', () => this.#onEnd())
    socket.on('error', () => this.#onClose())
    socket.on('close', () => this.#onClose())
  }

  /** A request is in progress. */
  get busy(): boolean { return this.#active !== null }

  /** Graceful stop: closes the connection now if idle, else once its request has finished. */
  closeWhenIdle(): void {
    this.#ended = true
    if (this.#active === null) this.#socket.end()
  }

  #onData(chunk: Buffer): void {
    let records: FcgiRecord[]
    try {
      records = this.#reader.push(chunk)
      for (const r of records) this.#onRecord(r)
    } catch (e) {
      this.#fail(e as Error)
    }
  }

  #onEnd(): void {
    try { this.#reader.end() } catch (e) { this.#options.onProtocolError?.(e as Error, this.#socket) }
    // The web server half-closed: a request still running may finish writing; nothing more comes.
    this.#ended = true
    if (this.#active === null) this.#socket.end()
  }

  #onClose(): void {
    if (this.#closed) return
    this.#closed = true
    const a = this.#active
    if (a !== null && !a.done) { a.done = true; a.exchange?.abort() }
    this.#active = null
  }

  #fail(e: Error): void {
    this.#options.onProtocolError?.(e, this.#socket)
    this.#socket.destroy()
    this.#onClose()
  }

  #write(buf: Buffer | Buffer[], done?: () => void): void {
    if (this.#closed) { done?.(); return }
    // Records written in the same tick go out in one write.
    if (!this.#corked) {
      this.#corked = true
      this.#socket.cork()
      process.nextTick(() => { this.#corked = false; this.#socket.uncork() })
    }
    let ok = true
    if (Array.isArray(buf)) for (const b of buf) ok = this.#socket.write(b)
    else ok = this.#socket.write(buf)
    if (done) {
      if (ok) done()
      else this.#socket.once('drain', done)
    }
  }

  #onRecord(r: FcgiRecord): void {
    if (r.requestId === 0) { this.#onManagement(r); return }
    const a = this.#active
    if (r.type === Type.BEGIN_REQUEST) {
      const begin = decodeBeginRequest(r.content)
      if (a !== null && a.id !== r.requestId) {
        this.#write(encodeEndRequest(r.requestId, 0, ProtocolStatus.CANT_MPX_CONN))
        return
      }
      if (a !== null) throw new FastCgiProtocolError(`BEGIN_REQUEST for request ${r.requestId}, which is already active`)
      if (begin.role !== Role.RESPONDER && begin.role !== Role.AUTHORIZER) {
        this.#write(encodeEndRequest(r.requestId, 0, ProtocolStatus.UNKNOWN_ROLE))
        if (!begin.keepConn) this.#socket.end()
        return
      }
      this.#active = { id: r.requestId, role: begin.role, keepConn: begin.keepConn, params: new PairCollector(this.#options.maxParams), exchange: null, done: false, info: null }
      return
    }
    // Records for a request that is not active are ignored (spec §3.3), as are ours after an abort.
    if (a === null || a.id !== r.requestId) return
    switch (r.type) {
      case Type.PARAMS:
        if (a.params === null) throw new FastCgiProtocolError('PARAMS after the PARAMS stream ended')
        if (r.content.length > 0) { a.params.add(r.content); return }
        this.#start(a, a.params.finish())
        a.params = null
        return
      case Type.STDIN:
        if (a.exchange === null) {
          if (a.params !== null) throw new FastCgiProtocolError('STDIN before the PARAMS stream ended')
          return
        }
        if (r.content.length === 0) { a.exchange.endBody(); return }
        if (!a.exchange.body(Buffer.from(r.content))) this.#socket.pause()
        return
      case Type.ABORT_REQUEST:
        this.#abort(a)
        return
      case Type.DATA:
        return
      default:
        throw new FastCgiProtocolError(`unexpected record type ${r.type} for request ${r.requestId}`)
    }
  }

  #onManagement(r: FcgiRecord): void {
    if (r.type !== Type.GET_VALUES) { this.#write(encodeUnknownType(r.type)); return }
    const known: Record<string, string> = {
      FCGI_MAX_CONNS: String(this.#options.maxConns),
      FCGI_MAX_REQS: String(this.#options.maxConns),
      FCGI_MPXS_CONNS: '0',
    }
    const answer: Array<[string, string]> = []
    for (const [name] of decodePairs(r.content)) if (name in known) answer.push([name, known[name]!])
    this.#write(encodeRecord(Type.GET_VALUES_RESULT, 0, encodePairs(answer)))
  }

  #start(a: Active, pairs: Array<[string, string]>): void {
    const env = new Map(pairs)
    const head = requestFromEnv(env)
    if (a.role === Role.AUTHORIZER) {
      // An authorizer request carries no body (spec §6.3): only the filters' verdict is asked for.
      head.method = head.method === 'HEAD' ? 'HEAD' : 'GET'
      delete head.headers['content-length']
      delete head.headers['transfer-encoding']
    }
    a.info = { method: head.method, url: head.url }
    this.#options.onRequest?.('start', a.info)
    const out: GatewayOutput = {
      write: (chunks, done) => {
        if (a.done) { done(); return }
        const records: Buffer[] = []
        for (const c of chunks) records.push(...encodeStream(Type.STDOUT, a.id, c))
        this.#write(records, done)
      },
      end: () => this.#finish(a, 0),
      // The app destroyed the response part-way: close without END_REQUEST, so the web server
      // reports an incomplete response instead of passing on a truncated one.
      abort: () => {
        if (a.done) return
        a.done = true
        this.#release(a)
        this.#socket.destroy()
      },
    }
    a.exchange = dispatchGateway(this.#listener, head, out, { authorizeOnly: a.role === Role.AUTHORIZER, env })
    onBodyResume(a.exchange, () => this.#socket.resume())
    if (a.role === Role.AUTHORIZER) a.exchange.endBody()
  }

  #finish(a: Active, appStatus: number): void {
    if (a.done) return
    a.done = true
    this.#write([encodeRecord(Type.STDOUT, a.id), encodeEndRequest(a.id, appStatus, ProtocolStatus.REQUEST_COMPLETE)])
    this.#release(a)
    if (!a.keepConn || this.#ended) this.#socket.end()
  }

  #abort(a: Active): void {
    if (a.done) return
    a.done = true
    a.exchange?.abort()
    this.#write(encodeEndRequest(a.id, 1, ProtocolStatus.REQUEST_COMPLETE))
    this.#release(a)
    if (!a.keepConn || this.#ended) this.#socket.end()
  }

  #release(a: Active): void {
    if (this.#active === a) this.#active = null
    this.#socket.resume()
    if (a.info) this.#options.onRequest?.('end', a.info)
  }
}
