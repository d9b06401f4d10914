// Response headers that come from extension or filter code (an HttpError's `headers`, a filter's
// setHeader) are checked before anything is sent: Node refuses a CR, LF or other control character
// only once it writes the head, too late to answer in Resident's own shape.
//
// The rules are node:http's own (validateHeaderName, validateHeaderValue; a property test holds
// them equal), written out because this module is also loaded by the cgi mode's runner, a process
// per request, where loading node:http would cost every request several ms of start-up.

/** An RFC 9110 token: what node:http accepts as a header name. */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/
/** A character node:http refuses in a header value: controls other than HTAB, DEL, beyond Latin-1. */
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/

/** RegExp.test's own conversion, as node:http applies it (a Symbol cannot be converted: refused). */
function invalidValue(v: unknown): boolean {
  try { return INVALID_VALUE_CHAR.test(v as string) } catch { return true }
}

/** Why `name: value` cannot be sent, or null when it can. */
export function headerProblem(name: string, value: unknown): string | null {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    return `the response header name ${JSON.stringify(String(name).slice(0, 100))} is not a valid HTTP token`
  }
  const values = Array.isArray(value) ? value : [value]
  for (const v of values) {
    if (v === undefined || invalidValue(v)) {
      return `the response header "${name}" has a value that cannot be sent (CR, LF or another control character)`
    }
  }
  return null
}

/** The first problem among `headers`, or null. */
export function headersProblem(headers: Record<string, unknown>): string | null {
  for (const name of Object.keys(headers)) {
    const p = headerProblem(name, headers[name])
    if (p !== null) return p
  }
  return null
}

/**
 * Headers that describe the connection or the body's framing, which Resident decides for itself
 * (fastify measures a whole body; a stream goes chunked): one copied from an extension's Response
 * that does not match what is sent would cut the body short or hang the client.
 */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'proxy-connection', 'trailer', 'te',
])
