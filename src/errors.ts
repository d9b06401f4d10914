// The one registry of errors Resident raises. Each code is documented in README.md "Errors";
// test/errors.test.ts keeps the two in step.

const RESIDENT_ERROR = Symbol.for('resident.error')

interface ErrorDef { status: number; message: string }

export const errors = {
  RES_ERR_NOT_FOUND: { status: 404, message: 'No extension serves this path' },
  RES_ERR_UNKNOWN_COMMAND: { status: 404, message: 'The extension has no such command' },
  RES_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'The command does not accept this HTTP method' },
  RES_ERR_BAD_PARAM: { status: 400, message: 'A parameter is missing or invalid' },
  RES_ERR_BAD_BODY: { status: 400, message: 'The request body could not be parsed' },
  RES_ERR_BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  RES_ERR_TOO_MANY_PARAMETERS: { status: 400, message: 'The request has more parameters than the parameterLimit setting allows' },
  RES_ERR_REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive in time' },
  RES_ERR_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than the limit' },
  RES_ERR_BODY_TOO_DEEP: { status: 400, message: 'The JSON body nests deeper than the limit' },
  RES_ERR_EXPECTATION_FAILED: { status: 417, message: 'The request carries an Expect header the server does not meet' },
  RES_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body has an unsupported content type' },
  RES_ERR_ADMIN_FORBIDDEN: { status: 403, message: 'The admin surface answers loopback callers or a valid token only' },
  RES_ERR_FILTERS_NEED_RESTART: { status: 409, message: 'The server started without filters; adding the first one needs a restart' },
  RES_ERR_COMMAND_FAILED: { status: 500, message: 'The command failed' },
  RES_ERR_LOAD_FAILED: { status: 500, message: 'The extension failed to load' },
  RES_ERR_BAD_HEADER: { status: 500, message: 'An extension or filter set an invalid response header' },
  RES_ERR_BAD_RESULT: { status: 500, message: 'The command returned a result that cannot be sent' },
  RES_ERR_FILTER_FAILED: { status: 500, message: 'A filter failed' },
  RES_ERR_FILTER_LOAD_FAILED: { status: 500, message: 'A filter failed to load' },
  RES_ERR_INTERNAL: { status: 500, message: 'Internal error' },
  RES_ERR_UNAVAILABLE: { status: 503, message: 'The server is shutting down' },
  RES_ERR_OVERLOADED: { status: 503, message: 'The server has too many requests in progress; retry later' },
  RES_ERR_PIPELINE_LIMIT: { status: 503, message: 'Too many requests are queued on this connection' },
  RES_ERR_EXTENSION_FAILED: { status: 503, message: 'The extension failed to load repeatedly and is waiting before the next attempt' },
  RES_ERR_FASTCGI_UNREACHABLE: { status: 502, message: 'No FastCGI backend accepted a connection' },
  RES_ERR_FASTCGI_CLOSED: { status: 502, message: 'The FastCGI backend closed the connection before the response was complete' },
  RES_ERR_FASTCGI_PROTOCOL: { status: 502, message: 'The FastCGI backend sent something that is not a valid response' },
  RES_ERR_FASTCGI_OVERLOADED: { status: 503, message: 'The FastCGI backend is overloaded' },
  RES_ERR_WORKER_CRASHED: { status: 502, message: 'The worker running the command crashed, hung or outgrew its memory limit, and was replaced' },
  RES_ERR_WORKER_BACKOFF: { status: 503, message: 'The extension\'s workers crashed repeatedly; the next one starts after a backoff' },
  RES_ERR_TIMEOUT: { status: 504, message: 'The command did not finish before its deadline' },
  RES_ERR_CGI_NOT_EXECUTABLE: { status: 403, message: 'The file in the CGI folder is neither executable nor mapped to an interpreter' },
  RES_ERR_CGI_BAD_OUTPUT: { status: 502, message: 'The CGI program did not answer with a valid CGI response' },
  RES_ERR_CGI_OUTPUT_TOO_LARGE: { status: 502, message: 'The CGI program wrote more than the output or header limit' },
  RES_ERR_CGI_FAILED: { status: 502, message: 'The CGI program could not be run' },
  RES_ERR_CGI_TIMEOUT: { status: 504, message: 'The CGI program did not finish before its deadline' },
  RES_ERR_CONFIG: { status: 500, message: 'The configuration is invalid' },
} as const satisfies Record<string, ErrorDef>

export type ErrorCode = keyof typeof errors

/** An error Resident raises on purpose: it carries a registry code, a status and a safe message. */
export class ResidentError extends Error {
  static readonly [RESIDENT_ERROR] = true
  readonly code: ErrorCode
  readonly status: number
  readonly data: unknown
  readonly headers: Record<string, string>

  constructor(code: ErrorCode, detail?: string, options: { cause?: unknown; data?: unknown; headers?: Record<string, string> } = {}) {
    super(detail ?? errors[code].message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ResidentError'
    this.code = code
    this.status = errors[code].status
    this.data = options.data
    this.headers = options.headers ?? {}
  }
}

export function isResidentError(e: unknown): e is ResidentError {
  return typeof e === 'object' && e !== null &&
    (e.constructor as { [RESIDENT_ERROR]?: boolean })?.[RESIDENT_ERROR] === true
}

/**
 * A client's value in an error message: a bounded prefix, JSON-quoted. Never serialise a whole
 * client value into a message: a deep one overflows the stack, a long one makes every log line long.
 */
export function quote(value: unknown, max = 64): string {
  if (typeof value === 'string') return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  if (Array.isArray(value)) return `an array of ${value.length}`
  return `a${typeof value === 'object' ? 'n object' : ` ${typeof value}`}`
}
