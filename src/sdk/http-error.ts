import { HTTP_ERROR } from './brand.ts'

export interface HttpErrorOptions {
  /** A machine-readable code for clients, e.g. `DIVISION_BY_ZERO`. Default `HTTP_<status>`. */
  code?: string
  /** Extra JSON-serialisable detail sent to the client under `error.data`. */
  data?: unknown
  /** Extra response headers. */
  headers?: Record<string, string>
  cause?: unknown
}

/**
 * Throw from a command to answer with a status and a JSON error body.
 * @example throw new HttpError(400, 'b must not be 0', { code: 'DIVISION_BY_ZERO' })
 */
export class HttpError extends Error {
  static readonly [HTTP_ERROR] = true
  readonly status: number
  readonly code: string
  readonly data: unknown
  readonly headers: Record<string, string>

  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`HttpError status must be an integer from 400 to 599, got ${status}`)
    }
    this.name = 'HttpError'
    this.status = status
    this.code = options.code ?? `HTTP_${status}`
    this.data = options.data
    this.headers = options.headers ?? {}
  }
}

/** True for an HttpError from any copy of the SDK. */
export function isHttpError(e: unknown): e is HttpError {
  return typeof e === 'object' && e !== null &&
    typeof (e.constructor as { [HTTP_ERROR]?: boolean })?.[HTTP_ERROR] === 'boolean' &&
    typeof (e as HttpError).status === 'number'
}
