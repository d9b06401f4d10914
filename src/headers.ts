import { validateHeaderName, validateHeaderValue } from 'node:http'

// Response headers that come from extension or filter code (an HttpError's `headers`, a filter's
// setHeader) are checked before anything is sent: Node refuses a CR, LF or other control character
// only once it writes the head, too late to answer in Resident's own shape.

/** Why `name: value` cannot be sent, or null when it can. */
export function headerProblem(name: string, value: unknown): string | null {
  try {
    validateHeaderName(name)
  } catch {
    return `the response header name ${JSON.stringify(String(name).slice(0, 100))} is not a valid HTTP token`
  }
  const values = Array.isArray(value) ? value : [value]
  for (const v of values) {
    try {
      validateHeaderValue(name, typeof v === 'number' ? String(v) : v)
    } catch {
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
