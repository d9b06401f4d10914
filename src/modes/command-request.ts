import type { Logger as PinoLogger } from 'pino'
import { ResidentError } from '../errors.ts'
import { requestLogger } from '../log/request-logger.ts'
import type { CommandRequest, Headers, Logger } from '../sdk/types.ts'
import type { CancelReason, Invocation } from './invocation.ts'

/** The abort reason a command's `request.signal` carries for each cancellation. */
export function cancelError(reason: CancelReason, deadlineMs?: number): Error {
  if (reason === 'timeout') return new ResidentError('RES_ERR_TIMEOUT', deadlineMs ? `the command did not finish within ${deadlineMs} ms` : undefined)
  if (reason === 'shutdown') return new ResidentError('RES_ERR_UNAVAILABLE')
  return new Error('the client closed the connection')
}

/**
 * The `request` a command sees, made from an invocation on the side where the command runs. A
 * class rather than a literal so every request has the same shape, and so what costs something per
 * request is only made for commands that read it: the AbortController behind `signal` (a few µs)
 * and `log`. Every mode makes the same one (a worker on its side of the port).
 */
export class InvokedRequest implements CommandRequest {
  id: string
  method: string
  url: string
  path: string
  query: Record<string, string | string[]>
  headers: Headers
  body: unknown
  rawBody: Uint8Array
  contentType: string | null
  clientAddress: string
  user?: unknown
  extension: string
  command: string
  /** Another live request with the same id (ids may come from the client), for cancel(). */
  twin: InvokedRequest | null = null
  readonly #root: PinoLogger
  #log: Logger | null = null
  #controller: AbortController | null = null

  /** `root` is the generation's logger; the request's own (with its id) is made when `log` is read. */
  constructor(inv: Invocation, root: PinoLogger) {
    this.id = inv.id
    this.method = inv.method
    this.url = inv.url
    this.path = inv.path
    this.query = inv.query
    this.headers = inv.headers
    this.body = inv.body
    this.rawBody = inv.rawBody
    this.contentType = inv.contentType
    this.clientAddress = inv.clientAddress
    this.user = inv.user
    this.extension = inv.extension
    this.command = inv.command
    this.#root = root
  }

  get log(): Logger {
    return this.#log ??= requestLogger(this.#root, this.id)
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController()
    return this.#controller.signal
  }

  /** Aborts the signal (made now if nobody has read it yet, so a later read sees it aborted). */
  abort(reason: unknown): void {
    this.#controller ??= new AbortController()
    if (!this.#controller.signal.aborted) this.#controller.abort(reason)
  }
}

/** The requests of one generation that can still be cancelled, by id (several may share one). */
export class LiveRequests {
  readonly #byId = new Map<string, InvokedRequest>()

  add(r: InvokedRequest): void {
    const prev = this.#byId.get(r.id)
    if (prev !== undefined) r.twin = prev
    this.#byId.set(r.id, r)
  }

  delete(r: InvokedRequest): void {
    const head = this.#byId.get(r.id)
    if (head === r) {
      if (r.twin === null) this.#byId.delete(r.id)
      else this.#byId.set(r.id, r.twin)
      return
    }
    for (let c = head ?? null; c !== null; c = c.twin) {
      if (c.twin === r) { c.twin = r.twin; return }
    }
  }

  /** Aborts every live request with this id. */
  abort(id: string, reason: unknown): number {
    let n = 0
    for (let c = this.#byId.get(id) ?? null; c !== null; c = c.twin) { c.abort(reason); n++ }
    return n
  }

  get size(): number { return this.#byId.size }
}
