import type { Logger as PinoLogger } from 'pino'
import { requestLogger } from '../server/lazy-logger.ts'
import type { CommandRequest, Headers, Logger } from '../sdk/types.ts'

type Fields = Omit<CommandRequest, 'signal' | 'clientAddress' | 'log'>

/** Where the client address comes from when a command asks (fastify's request: `ip` honours trustProxy). */
export interface AddressSource { readonly ip: string }

/**
 * The request a command sees. A class rather than a literal so every request has the same shape,
 * and so what costs something per request is only made for commands that read it: the
 * AbortController behind `signal` (a few µs), `clientAddress` (a getpeername call) and `log`.
 */
export class DispatchedRequest implements CommandRequest {
  id: string
  method: string
  url: string
  path: string
  query: Record<string, string | string[]>
  headers: Headers
  body: unknown
  rawBody: Uint8Array
  contentType: string | null
  user?: unknown
  extension: string
  command: string
  readonly #root: PinoLogger
  #log: Logger | null = null
  #controller: AbortController | null = null
  #address: AddressSource | string

  /** `root` is the server's logger; the request's own (with its id) is made when `log` is read. */
  constructor(f: Fields, address: AddressSource, root: PinoLogger) {
    this.id = f.id
    this.method = f.method
    this.url = f.url
    this.path = f.path
    this.query = f.query
    this.headers = f.headers
    this.body = f.body
    this.rawBody = f.rawBody
    this.contentType = f.contentType
    this.user = f.user
    this.extension = f.extension
    this.command = f.command
    this.#root = root
    this.#address = address
  }

  get log(): Logger {
    return this.#log ??= requestLogger(this.#root, this.id)
  }

  get clientAddress(): string {
    if (typeof this.#address !== 'string') this.#address = this.#address.ip ?? ''
    return this.#address
  }

  /**
   * Reads what is read lazily while the connection is still open (a socket that has closed no
   * longer knows its peer): called before anything of the command outlives the handler's return.
   */
  pin(): void {
    void this.clientAddress
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
