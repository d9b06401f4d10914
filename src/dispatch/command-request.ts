import type { CommandRequest, Headers, Logger } from '../sdk/types.ts'

type Fields = Omit<CommandRequest, 'signal'>

/**
 * The request a command sees. A class rather than a literal so every request has the same shape,
 * and so the AbortController (a few µs each) is only made for commands that read `signal`.
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
  clientAddress: string
  user?: unknown
  extension: string
  command: string
  log: Logger
  #controller: AbortController | null = null

  constructor(f: Fields) {
    this.id = f.id
    this.method = f.method
    this.url = f.url
    this.path = f.path
    this.query = f.query
    this.headers = f.headers
    this.body = f.body
    this.rawBody = f.rawBody
    this.contentType = f.contentType
    this.clientAddress = f.clientAddress
    this.user = f.user
    this.extension = f.extension
    this.command = f.command
    this.log = f.log
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
