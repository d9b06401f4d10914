import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import { FRAMING_HEADERS, headerProblem } from '../headers.ts'
import { normalisePath } from '../loader/url-path.ts'
import { requestLogger } from '../log/request-logger.ts'
import type { FilterRequest, FilterResponse } from '../sdk/filter.ts'
import type { Headers, Logger } from '../sdk/types.ts'
import type { FilterChain } from './chain.ts'

/** The per-request object every notification of one request receives (one allocation per request). */
export class RequestContext implements FilterRequest {
  readonly id: string
  readonly method: string
  url: string
  readonly originalUrl: string
  readonly headers: Headers
  readonly clientAddress: string
  user: unknown = undefined
  readonly startTime: number
  /** The chain snapshot this request runs through, start to end. */
  readonly chain: FilterChain
  /** The reply, for the end-of-request listener (one shared function, no closure per request). */
  readonly reply: FastifyReply
  readonly #root: PinoLogger
  #log: Logger | null = null
  #state: Record<string, unknown> | null = null
  // Computed on first use: only filters with `static paths` need them.
  #path: string | null = null
  #matchPath: string | null = null

  constructor(request: FastifyRequest, reply: FastifyReply, chain: FilterChain, startTime: number, root: PinoLogger) {
    this.id = request.id
    this.method = request.method
    this.url = request.url
    this.originalUrl = request.url
    this.headers = request.headers
    this.clientAddress = request.ip
    this.#root = root
    this.startTime = startTime
    this.chain = chain
    this.reply = reply
  }

  /** The request's logger (lines carry its id), made on first use. */
  get log(): Logger { return this.#log ??= requestLogger(this.#root, this.id) }

  get state(): Record<string, unknown> { return this.#state ??= {} }

  get path(): string { return this.#path ??= pathOf(this.url) }

  /**
   * The path `static paths` are matched against: the router's own reading of it (normalisePath:
   * names percent-decoded, ASCII only, lower-cased), so `/%73ecret/` and `/SECRET/` meet the filter
   * guarding `/secret/**` exactly as they reach `secret`. A path the router will reject is matched
   * as it came.
   */
  get matchPath(): string {
    return this.#matchPath ??= normalisePath(this.path) ?? this.path
  }

  setUrl(url: string): void {
    this.url = url
    this.#path = null
    this.#matchPath = null
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

type Body = FilterResponse['body']

// The last value each header name was accepted with: filters set the same few headers to the same
// values on every response (security headers, a policy), and checking them costs each response
// about a microsecond. Bounded, since names may come from requests.
const accepted = new Map<string, string>()
function accept(name: string, value: string): void {
  if (accepted.size >= 256) accepted.clear()
  accepted.set(name, value)
}

/** The response as onAccessDenied / onSendResponse see it: status and headers live on the reply. */
export class ResponseView implements FilterResponse {
  readonly #reply: FastifyReply
  #body: Body
  changed = false

  constructor(reply: FastifyReply, body: Body) {
    this.#reply = reply
    this.#body = body
  }

  get status(): number { return this.#reply.statusCode }
  set status(code: number) {
    if (!Number.isInteger(code) || code < 100 || code > 599) throw new RangeError(`invalid status ${code}`)
    this.#reply.code(code)
  }

  get body(): Body { return this.#body }
  set body(value: Body) {
    this.#body = value
    this.changed = true
  }

  getHeader(name: string) { return this.#reply.getHeader(name) as string | string[] | number | undefined }
  setHeader(name: string, value: string | string[] | number): void {
    if (typeof value !== 'string' || accepted.get(name) !== value) {
      const problem = headerProblem(name, value)
      if (problem !== null) throw new TypeError(problem)
      const lower = name.toLowerCase()
      if (lower !== 'content-length' && FRAMING_HEADERS.has(lower)) throw new TypeError(`the "${lower}" header is the server's to set: it describes the connection, not the response`)
      if (typeof value === 'string') accept(name, value)
    }
    this.#reply.header(name, value)
  }
  removeHeader(name: string): void { this.#reply.removeHeader(name) }

  json(): unknown {
    const b = this.#body
    if (typeof b !== 'string' && !Buffer.isBuffer(b)) return undefined
    const type = String(this.#reply.getHeader('content-type') ?? '')
    if (!/[/+]json\b/i.test(type)) return undefined
    try { return JSON.parse(b.toString()) } catch { return undefined }
  }
}
