import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { getHeapStatistics } from 'node:v8'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { LimitSettings } from '../config/types.ts'
import { quote, ResidentError } from '../errors.ts'

const OPEN = Symbol('resident.openResponses')
const BUDGET = Symbol('resident.budget')
const REJECT = Symbol('resident.reject')

type TrackedSocket = Socket & { [OPEN]?: Set<ServerResponse> }
type TrackedResponse = ServerResponse & { [BUDGET]?: RequestBudget; [OPEN]?: Set<ServerResponse> }
type TrackedRequest = IncomingMessage & { [REJECT]?: ResidentError }

const ADMIN = '/_resident'
const HEAP_SAMPLE_MS = 100
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/

/**
 * What a request may cost the process before anything of it is read, and the end of every
 * request's life on its connection.
 *
 * Node answers pipelined requests in order but hands them all to the application at once, and it
 * never emits `close` for a response still queued behind another when the connection goes away:
 * whatever listens for that `close` (a command's abort signal, its generation lease, a stream's
 * teardown, the filters' end of request) would wait forever. So every response is tracked on its
 * socket, and when the socket closes, each one still queued is marked destroyed and gets its
 * `close`: one event that every layer already listens for.
 */
export class RequestBudget {
  /** Responses not yet closed, in the whole process. */
  inFlight = 0
  readonly #limits: LimitSettings
  #heapAt = 0
  #heapHigh = false

  constructor(server: Server, limits: LimitSettings) {
    this.#limits = limits
    // Before fastify's own listener, so the target it routes is already in origin-form.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#arrive(req, res))
    // Node answers these itself with empty bodies (or, for CONNECT, not at all); routed through
    // fastify instead, they get Resident's JSON error, the filters' headers and a log line.
    ;(server as Server & { requireHostHeader: boolean }).requireHostHeader = false
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
    server.on('connect', (req: IncomingMessage, socket: TrackedSocket) => {
      // Node hands the socket over with no error listener of its own: without one, a client that
      // resets it would take the process down.
      socket.on('error', () => socket.destroy())
      // Nor does it end the connection when the client does: without this a half-closed socket
      // (and every response still queued on it) would stay open for good.
      socket.on('end', () => socket.end())
      // Node has stopped reading it; anything the client sends after CONNECT is discarded, but
      // read, or its hang-up would never be seen.
      socket.resume()
      const answer = () => {
        if (socket.destroyed) return
        const res = new ServerResponse(req)
        res.shouldKeepAlive = false
        res.assignSocket(socket)
        res.once('finish', () => socket.end())
        res.once('close', () => socket.destroySoon())
        server.emit('request', req, res)
      }
      // Pipelined behind other requests: answered in order, once theirs have gone out.
      const open = socket[OPEN]
      if (open === undefined || open.size === 0) { answer(); return }
      let left = open.size
      for (const res of open) res.once('close', () => { if (--left === 0) setImmediate(answer) })
    })
  }

  /** Registers the check that turns a flagged or unaffordable request into a Resident error. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', (request, _reply, done) => {
      const err = this.check(request)
      if (err === null) done()
      else done(err)
    })
    // A request answered before its body was read (refused by a limit, a bad URL, no such command,
    // a filter) never will be: Node discards such a body only once the response has gone out, and
    // a response queued behind another on its connection has not. Until then the unread bytes fill
    // the socket's buffers, Node stops reading the socket, and a client that hangs up is never
    // seen: every response queued on it would wait for the one ahead to write, or for its deadline.
    app.addHook('onSend', (request, _reply, payload, done) => {
      discardUnreadBody(request.raw)
      done(null, payload)
    })
  }

  /** The error a request must be answered with before it is read, or null. */
  check(request: FastifyRequest): ResidentError | null {
    const raw = request.raw as TrackedRequest
    const flagged = raw[REJECT]
    if (flagged !== undefined) return flagged
    // The admin surface stays reachable under load: it is how an operator unloads what is heavy.
    if (isAdminPath(request.url)) return null
    const max = this.#limits.maxInFlight
    if (max > 0 && this.inFlight > max) {
      return new ResidentError('RES_ERR_OVERLOADED', `the server has ${this.inFlight - 1} requests in progress (limits.maxInFlight is ${max}); retry later`, { headers: { 'retry-after': '1' } })
    }
    if (this.#heapShedding()) {
      return new ResidentError('RES_ERR_OVERLOADED', `the server's heap is above ${Math.round(this.#limits.heapShed * 100)}% of its limit (limits.heapShed); retry later`, { headers: { 'retry-after': '5' } })
    }
    return null
  }

  #heapShedding(): boolean {
    if (this.#limits.heapShed >= 1) return false
    const now = Date.now()
    if (now - this.#heapAt >= HEAP_SAMPLE_MS) {
      this.#heapAt = now
      const h = getHeapStatistics()
      this.#heapHigh = h.used_heap_size > h.heap_size_limit * this.#limits.heapShed
    }
    return this.#heapHigh
  }

  #arrive(req: TrackedRequest, res: TrackedResponse): void {
    this.inFlight++
    const socket = req.socket as TrackedSocket
    let open = socket[OPEN]
    if (open === undefined) {
      open = socket[OPEN] = new Set()
      socket.once('close', closeQueued)
    }
    open.add(res)
    res[BUDGET] = this
    res[OPEN] = open
    res.once('close', onResponseClose)
    if (socket.destroyed) closeQueued.call(socket)
    if (open.size > this.#limits.pipeline) {
      req[REJECT] = new ResidentError('RES_ERR_PIPELINE_LIMIT', `this connection already has ${open.size - 1} requests outstanding (limits.pipeline is ${this.#limits.pipeline}); send the rest on a new connection`, {
        headers: { connection: 'close', 'retry-after': '1' },
      })
    }
    const reject = normaliseTarget(req)
    if (reject !== null) req[REJECT] ??= reject
  }
}

/**
 * Whether the router will read `url` as the admin surface's: `/_resident` or below it, however
 * its first segment is percent-encoded (`/%5Fresident/status` reaches the same route).
 */
function isAdminPath(url: string): boolean {
  const c = url.charCodeAt(1)
  if (c !== 95 /* _ */ && c !== 37 /* % */) return false
  let end = 1
  while (end < url.length && url.charCodeAt(end) !== 47 && url.charCodeAt(end) !== 63 /* ? */) end++
  let segment = url.slice(1, end)
  if (segment.includes('%')) {
    try { segment = decodeURIComponent(segment) } catch { return false }
  }
  return segment === ADMIN.slice(1)
}

function onResponseClose(this: TrackedResponse): void {
  const open = this[OPEN]
  if (open !== undefined && open.delete(this)) this[BUDGET]!.inFlight--
}

/** Reads and drops a request body nothing has started to read (a reader that paused keeps it). */
function discardUnreadBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed || req.readableFlowing !== null || req.listenerCount('readable') > 0) return
  req.resume()
}

/** The connection closed: every response still queued on it is finished for good. */
function closeQueued(this: TrackedSocket): void {
  const open = this[OPEN]
  if (open === undefined) return
  for (const res of [...open]) {
    // Writes to a destroyed response are dropped instead of buffered for a socket that is gone.
    res.destroyed = true
    res.emit('close')
  }
}

/**
 * RFC 9112 §3.2: an absolute-form target (`GET http://host/path`) is routed as its path, with its
 * authority as the Host; a malformed percent-encoding is answered 400 by Resident rather than by
 * the router; a missing Host on HTTP/1.1, more than one Host, a bad Expect and CONNECT are refused. Returns the error
 * to answer with, or null.
 */
function normaliseTarget(req: TrackedRequest): ResidentError | null {
  let url = req.url ?? ''
  let reject: ResidentError | null = null
  if (req.method === 'CONNECT') {
    reject = new ResidentError('RES_ERR_METHOD_NOT_ALLOWED', 'Resident is not a proxy: CONNECT is not served', { headers: { connection: 'close' } })
    url = '/'
  } else if (url.charCodeAt(0) !== 47 /* / */) {
    const absolute = /^https?:\/\//i.test(url) ? safeUrl(url) : null
    if (absolute !== null) {
      url = absolute.pathname + absolute.search
      req.headers.host = absolute.host
    } else {
      if (!(url === '*' && req.method === 'OPTIONS')) reject = new ResidentError('RES_ERR_BAD_REQUEST', `the request target must be a path or an absolute URL, got ${quote(url)}`)
      url = '/'
    }
  }
  if (url.includes('%') && !decodable(url)) {
    // Escaped so the router accepts it (and the access log shows it); answered 400 before dispatch.
    reject ??= new ResidentError('RES_ERR_BAD_REQUEST', 'the URL has an invalid percent-encoding')
    url = url.replace(/%/g, '%25')
  }
  if (req.url !== url) req.url = url
  if (reject === null && req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    reject = new ResidentError('RES_ERR_BAD_REQUEST', 'an HTTP/1.1 request must carry a Host header')
  }
  if (reject === null && hostLines(req.rawHeaders) > 1) {
    // Node keeps the first and drops the rest: one check could read one Host and a proxy the other.
    reject = new ResidentError('RES_ERR_BAD_REQUEST', 'a request must carry one Host header, not several')
  }
  const expect = req.headers.expect
  if (reject === null && expect !== undefined && expect.trim().toLowerCase() !== '100-continue') {
    reject = new ResidentError('RES_ERR_EXPECTATION_FAILED', `the server meets no expectation but 100-continue, got ${quote(expect)}`, { headers: { connection: 'close' } })
  }
  return reject
}

function hostLines(raw: string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && (name === 'Host' || name.toLowerCase() === 'host')) n++
  }
  return n
}

/** Whether the router can decode the path: `%` followed by two hex digits, making valid UTF-8. */
function decodable(url: string): boolean {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (BAD_PERCENT.test(path)) return false
  try {
    decodeURI(path)
    return true
  } catch {
    return false
  }
}

function safeUrl(url: string): URL | null {
  try {
    return new URL(url)
  } catch {
    return null
  }
}
