import net from 'node:net'
import { PassThrough, type Readable } from 'node:stream'
import { CgiHeadReader, type CgiHead } from '../gateway/cgi-response.ts'
import { parseAddress, type ListenAddress } from './listen.ts'
import { decodePairs, encodePairRecords, encodePairs, type Pairs } from './pairs.ts'
import {
  decodeEndRequest, encodeBeginRequest, encodeRecord, encodeStream, FastCgiProtocolError, FCGI_MAX_SENT_CONTENT, ProtocolStatus,
  RecordReader, Role, Type,
} from './records.ts'

/** Why a FastCGI request failed; the HTTP side maps each kind to a status. */
export type FcgiFailure =
  | 'unreachable' // no backend accepted a connection (502)
  | 'closed' // the connection closed before END_REQUEST (502)
  | 'overloaded' // END_REQUEST with OVERLOADED (503)
  | 'protocol' // the backend broke the protocol, or sent a bad header block (502)
  | 'timeout' // no answer within the timeout (504)

export class FcgiClientError extends Error {
  override name = 'FcgiClientError'
  constructor(readonly kind: FcgiFailure, message: string, options?: { cause?: unknown }) { super(message, options) }
}

export interface FcgiResponse {
  status: number
  headers: CgiHead['headers']
  /** STDOUT after the header block; it errors if the backend fails part-way. */
  body: Readable
  /** Which backend answered. */
  backend: string
}

export interface FcgiRequest {
  params: Pairs
  /** Streamed to STDIN, or sent whole. */
  body?: Readable | Buffer | null
  signal?: AbortSignal
}

export interface ClientOptions {
  /** One or more backends: `unix:/path` or `host:port`. */
  addresses: string[]
  /**
   * Connections per backend, kept alive between requests. Default: the backend's FCGI_MAX_CONNS
   * when it answers GET_VALUES; else up to 64 connections, each closed after its request.
   */
  maxConns?: number
  /** How long a connect may take, in ms. */
  connectTimeout?: number
  /** How long a backend that refused a connection is left out, in ms. */
  downTime?: number
  /** Lines the backend wrote to STDERR. */
  onStderr?: (line: string, backend: string) => void
}

interface Conn { socket: net.Socket; backend: Backend }

/** Connections at once to a backend whose limit is unknown (not kept alive, so none is pinned). */
const UNKNOWN_LIMIT = 64

/** One backend: its kept-alive connections and those waiting for one. */
class Backend {
  readonly name: string
  readonly address: ListenAddress
  active = 0
  idle: Conn[] = []
  open = 0
  waiting: Array<(c: Conn | Error | null) => void> = []
  downUntil = 0
  limit: number
  /**
   * Keep connections open between requests. Only with a known limit: php-fpm keeps a worker on a
   * kept connection until it closes, so more kept connections than workers leave requests queued
   * behind idle connections for ever. php-fpm does not answer FCGI_MAX_CONNS; set maxConns to its
   * pm.max_children to pool connections to it.
   */
  keepAlive: boolean
  #learning: Promise<void> | null = null

  constructor(name: string, private readonly options: ClientOptions) {
    this.name = name
    this.address = parseAddress(name)
    this.limit = options.maxConns ?? UNKNOWN_LIMIT
    this.keepAlive = options.maxConns !== undefined
  }

  get healthy(): boolean { return Date.now() >= this.downUntil }
  /** How busy it is, against its own limit: the client sends to the least busy. */
  get load(): number { return (this.active + this.waiting.length) / this.limit }

  connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const a = this.address
      const s = a.kind === 'unix' ? net.connect(a.path) : net.connect(a.kind === 'tcp' ? a.port : 0, a.kind === 'tcp' ? a.host : undefined)
      const timer = setTimeout(() => { s.destroy(); reject(Object.assign(new Error(`connect to ${this.name} timed out`), { code: 'ETIMEDOUT' })) }, this.options.connectTimeout ?? 5000)
      s.once('connect', () => { clearTimeout(timer); s.setNoDelay(true); resolve(s) })
      s.once('error', (e) => { clearTimeout(timer); reject(e) })
    })
  }

  /**
   * Asks the backend its FCGI_MAX_CONNS once, on a connection of its own (PHP closes a connection
   * after GET_VALUES_RESULT), unless the limit was configured.
   */
  learnLimit(): Promise<void> {
    if (this.options.maxConns !== undefined) return Promise.resolve()
    this.#learning ??= this.#ask()
    return this.#learning
  }

  async #ask(): Promise<void> {
    let s: net.Socket
    try { s = await this.connect() } catch { this.#learning = null; return }
    const answer = await getValues(s, 1000)
    const n = Number(answer?.get('FCGI_MAX_CONNS'))
    if (Number.isInteger(n) && n > 0) { this.limit = Math.min(n, 1024); this.keepAlive = true }
  }
}

/**
 * Asks a responder its FCGI_MAX_CONNS, FCGI_MAX_REQS and FCGI_MPXS_CONNS on `socket`, which it then
 * closes. Resolves null when no answer comes within `timeoutMs` (or the connection fails): an
 * answer at all proves the responder's event loop turns.
 */
export function getValues(socket: net.Socket, timeoutMs: number): Promise<Map<string, string> | null> {
  return new Promise((resolve) => {
    const reader = new RecordReader()
    const done = (v: Map<string, string> | null) => { clearTimeout(t); socket.destroy(); resolve(v) }
    const t = setTimeout(() => done(null), timeoutMs)
    socket.on('data', (d: Buffer) => {
      try {
        for (const r of reader.push(d)) if (r.type === Type.GET_VALUES_RESULT) done(new Map(decodePairs(r.content)))
      } catch { done(null) }
    })
    socket.on('error', () => done(null))
    socket.on('close', () => done(null))
    socket.write(encodeRecord(Type.GET_VALUES, 0, encodePairs([['FCGI_MAX_CONNS', ''], ['FCGI_MAX_REQS', ''], ['FCGI_MPXS_CONNS', '']])))
  })
}

/**
 * A FastCGI client for any responder (php-fpm, php-cgi -b, fcgi-worker): one request per
 * connection at a time with id 1, connections kept alive and pooled up to the backend's limit.
 * With several backends each request goes to the least busy healthy one; a backend that refuses
 * a connection is left out for `downTime`, and the request tries another, since nothing of it
 * was sent. Once any byte was sent, a failure is the request's answer (it may not be idempotent).
 */
export class FcgiClient {
  readonly backends: Backend[]
  #closed = false

  constructor(private readonly options: ClientOptions) {
    if (options.addresses.length === 0) throw new RangeError('a FastCGI client needs at least one address')
    this.backends = options.addresses.map((a) => new Backend(a, options))
  }

  async request(req: FcgiRequest): Promise<FcgiResponse> {
    const tried = new Set<Backend>()
    let last: unknown = null
    for (;;) {
      const backend = this.#pick(tried)
      if (backend === null) {
        throw new FcgiClientError('unreachable', `no FastCGI backend accepted a connection (${this.backends.map((b) => b.name).join(', ')})`, { cause: last })
      }
      tried.add(backend)
      let conn: Conn
      try {
        conn = await this.#acquire(backend, req.signal)
      } catch (e) {
        if (req.signal?.aborted) throw e
        backend.downUntil = Date.now() + (this.options.downTime ?? 10_000)
        last = e
        continue
      }
      return this.#run(conn, req)
    }
  }

  /** Healthy backends first, least busy first; when all are down, the one down longest gets a try. */
  #pick(tried: Set<Backend>): Backend | null {
    let best: Backend | null = null
    for (const b of this.backends) {
      if (tried.has(b) || !b.healthy) continue
      if (best === null || b.load < best.load) best = b
    }
    if (best !== null) return best
    for (const b of this.backends) if (!tried.has(b) && (best === null || b.downUntil < best.downUntil)) best = b
    return best
  }

  async #acquire(b: Backend, signal: AbortSignal | undefined): Promise<Conn> {
    await b.learnLimit()
    const idle = b.idle.pop()
    if (idle !== undefined) { b.active++; return idle }
    if (b.open < b.limit) {
      b.open++
      try {
        const socket = await b.connect()
        b.active++
        const conn: Conn = { socket, backend: b }
        socket.once('close', () => {
          b.open--
          const i = b.idle.indexOf(conn)
          if (i >= 0) b.idle.splice(i, 1)
          this.#next(b)
        })
        socket.on('error', () => {})
        return conn
      } catch (e) {
        b.open--
        throw e
      }
    }
    // At the limit: wait for a connection to come free.
    return new Promise<Conn>((resolve, reject) => {
      const waiter = (c: Conn | Error | null) => {
        signal?.removeEventListener('abort', onAbort)
        if (c === null) this.#acquire(b, signal).then(resolve, reject)
        else if (c instanceof Error) reject(c)
        else { b.active++; resolve(c) }
      }
      const onAbort = () => {
        const i = b.waiting.indexOf(waiter)
        if (i >= 0) b.waiting.splice(i, 1)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      b.waiting.push(waiter)
    })
  }

  /** A connection came free or closed: the first waiter gets it, or a new one. */
  #next(b: Backend): void {
    const w = b.waiting.shift()
    if (w === undefined) return
    const idle = b.idle.pop()
    w(idle ?? null)
  }

  #release(conn: Conn, reusable: boolean): void {
    const b = conn.backend
    b.active--
    if (!reusable || this.#closed || conn.socket.destroyed) { conn.socket.destroy(); return }
    conn.socket.removeAllListeners('data')
    conn.socket.removeAllListeners('end')
    b.idle.push(conn)
    this.#next(b)
  }

  #run(conn: Conn, req: FcgiRequest): Promise<FcgiResponse> {
    const { socket, backend } = conn
    const id = 1
    return new Promise<FcgiResponse>((resolve, reject) => {
      const reader = new RecordReader()
      const headReader = new CgiHeadReader()
      let body: PassThrough | null = null
      let settled = false
      let finished = false
      let stderrRest = ''

      const fail = (kind: FcgiFailure, message: string, cause?: unknown) => {
        if (finished) return
        finished = true
        cleanup()
        socket.destroy()
        this.#release(conn, false)
        const e = new FcgiClientError(kind, `${backend.name}: ${message}`, { cause })
        if (!settled) { settled = true; reject(e) } else body?.destroy(e)
      }
      const stderr = (text: string) => {
        const lines = (stderrRest + text).split('\n')
        stderrRest = lines.pop()!
        for (const l of lines) if (l.trim() !== '') this.options.onStderr?.(l, backend.name)
      }
      const onData = (chunk: Buffer) => {
        try {
          for (const r of reader.push(chunk)) {
            if (r.requestId !== id) continue
            if (r.type === Type.STDOUT) {
              if (r.content.length === 0) continue
              if (body !== null) { body.write(Buffer.from(r.content)); continue }
              const got = headReader.push(Buffer.from(r.content))
              if (got === null) continue
              body = new PassThrough()
              if (got.rest.length > 0) body.write(got.rest)
              settled = true
              resolve({ status: got.head.status, headers: got.head.headers, body, backend: backend.name })
            } else if (r.type === Type.STDERR) {
              if (r.content.length > 0) stderr(r.content.toString('utf8'))
            } else if (r.type === Type.END_REQUEST) {
              const end = decodeEndRequest(r.content)
              if (stderrRest !== '') { stderr('\n') }
              if (end.protocolStatus === ProtocolStatus.OVERLOADED) { fail('overloaded', 'the backend is overloaded'); return }
              if (end.protocolStatus !== ProtocolStatus.REQUEST_COMPLETE) { fail('protocol', `the backend refused the request (protocol status ${end.protocolStatus})`); return }
              if (body === null) { fail('protocol', 'the response ended before its header block did'); return }
              finished = true
              cleanup()
              body.end()
              // Reusable only when END_REQUEST was the last thing on the wire.
              this.#release(conn, backend.keepAlive && reader.pending === 0 && socket.readable)
              return
            }
          }
        } catch (e) {
          fail('protocol', (e as Error).message, e)
        }
      }
      const onClose = () => fail('closed', 'the connection closed before the response was complete (no END_REQUEST)')
      const onAbort = () => fail('closed', 'the request was abandoned by its client', req.signal?.reason)
      const cleanup = () => {
        socket.off('data', onData)
        socket.off('close', onClose)
        socket.off('end', onClose)
        req.signal?.removeEventListener('abort', onAbort)
      }
      socket.on('data', onData)
      socket.once('close', onClose)
      socket.once('end', onClose)
      req.signal?.addEventListener('abort', onAbort, { once: true })

      try {
        socket.cork()
        socket.write(encodeBeginRequest(id, Role.RESPONDER, backend.keepAlive))
        for (const r of encodePairRecords(Type.PARAMS, id, req.params)) socket.write(r)
        socket.write(encodeRecord(Type.PARAMS, id))
        const b = req.body
        if (b === undefined || b === null || Buffer.isBuffer(b)) {
          if (b && b.length > 0) for (const r of encodeStream(Type.STDIN, id, b)) socket.write(r)
          socket.write(encodeRecord(Type.STDIN, id))
          socket.uncork()
        } else {
          socket.uncork()
          void this.#pump(b, socket, id).catch((e: unknown) => fail('closed', `the request body failed: ${(e as Error).message}`, e))
        }
      } catch (e) {
        fail('protocol', (e as Error).message, e)
      }
    })
  }

  /** Streams a body to STDIN, record by record, minding the socket's backpressure. */
  async #pump(body: Readable, socket: net.Socket, id: number): Promise<void> {
    for await (const chunk of body) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer
      for (let at = 0; at < buf.length; at += FCGI_MAX_SENT_CONTENT) {
        if (socket.destroyed) return
        const ok = socket.write(encodeRecord(Type.STDIN, id, buf.subarray(at, Math.min(buf.length, at + FCGI_MAX_SENT_CONTENT))))
        if (!ok) await new Promise<void>((r) => { socket.once('drain', r); socket.once('close', r) })
      }
    }
    if (!socket.destroyed) socket.write(encodeRecord(Type.STDIN, id))
  }

  /** Status for the admin surface: each backend's connections and health. */
  describe(): Array<{ address: string; healthy: boolean; active: number; idle: number; waiting: number; limit: number }> {
    return this.backends.map((b) => ({ address: b.name, healthy: b.healthy, active: b.active, idle: b.idle.length, waiting: b.waiting.length, limit: b.limit }))
  }

  close(): void {
    this.#closed = true
    for (const b of this.backends) {
      for (const c of b.idle.splice(0)) c.socket.destroy()
      for (const w of b.waiting.splice(0)) w(new FcgiClientError('unreachable', 'the FastCGI client is closing'))
    }
  }
}

export { FastCgiProtocolError }
