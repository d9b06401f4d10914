import { Buffer } from 'node:buffer'

/**
 * RFC 3875 §6: a CGI response is header lines, a blank line, then the body. Lines end in LF
 * (CRLF accepted); there are no continuation lines. At least one of Content-Type, Location and
 * Status, each at most once.
 */
export type CgiResponseKind = 'document' | 'local-redirect' | 'client-redirect'

export interface CgiHead {
  kind: CgiResponseKind
  status: number
  /** The reason phrase from `Status:`, or null to let the server choose. */
  reason: string | null
  /** Lower-case names, values as sent, in order; Status, Location and hop-by-hop headers are not in here. */
  headers: Array<[string, string]>
  contentType: string | null
  /** The Location value (an abs-path for a local redirect, an absolute URI otherwise), or null. */
  location: string | null
}

/** Why output is not a CGI response; the gateway turns it into a 502 naming the program. */
export class CgiOutputError extends Error {
  override name = 'CgiOutputError'
  /** True when the problem was size (header block over the cap), not form. */
  readonly tooLarge: boolean
  constructor(message: string, tooLarge = false) {
    super(message)
    this.tooLarge = tooLarge
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Field values as Node will send them: no control characters but HTAB (so no CR, LF or NUL). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const STATUS = /^([1-9]\d{2})(?: ([\t\x20-\x7e\x80-\xff]*))?$/
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/
/** Hop-by-hop: they describe a connection, and the server owns the connection to the client. */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'content-length'])

/** Parses a complete header block (the bytes before the blank line, without it). */
export function parseCgiHead(block: Buffer): CgiHead {
  // latin1 keeps every byte as one char, so values with UTF-8 in them reach the client unchanged.
  const text = block.toString('latin1')
  const lines = text === '' ? [] : text.split('\n')
  const headers: Array<[string, string]> = []
  let status: string | null = null
  let contentType: string | null = null
  let location: string | null = null
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1)
    if (raw.startsWith(' ') || raw.startsWith('\t')) throw new CgiOutputError('a header line starts with white space (continuation lines are not allowed)')
    const colon = raw.indexOf(':')
    if (colon <= 0) throw new CgiOutputError(`a header line has no name: ${JSON.stringify(raw.slice(0, 80))}`)
    const name = raw.slice(0, colon)
    if (!TOKEN.test(name)) throw new CgiOutputError(`invalid header name ${JSON.stringify(name.slice(0, 80))}`)
    const value = raw.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
    if (!FIELD_VALUE.test(value)) throw new CgiOutputError(`header ${name} has a control character in its value`)
    const lower = name.toLowerCase()
    if (lower === 'status') {
      if (status !== null) throw new CgiOutputError('Status is given twice')
      status = value
    } else if (lower === 'content-type') {
      if (contentType !== null) throw new CgiOutputError('Content-Type is given twice')
      contentType = value
      headers.push([lower, value])
    } else if (lower === 'location') {
      if (location !== null) throw new CgiOutputError('Location is given twice')
      location = value
    } else if (lower === 'transfer-encoding') {
      // The server frames the body; a program that says it chunked would have its chunks sent as data.
      throw new CgiOutputError('the program sent Transfer-Encoding')
    } else if (!DROPPED.has(lower)) {
      headers.push([lower, value])
    }
  }
  if (status === null && contentType === null && location === null) {
    throw new CgiOutputError('the response has none of Content-Type, Location and Status')
  }
  let code = 200
  let reason: string | null = null
  if (status !== null) {
    const m = STATUS.exec(status)
    if (!m) throw new CgiOutputError(`invalid Status ${JSON.stringify(status.slice(0, 80))} (want three digits and a reason)`)
    code = Number(m[1])
    if (code < 200 || code > 599) throw new CgiOutputError(`Status ${code} is outside 200-599`)
    reason = m[2] === undefined || m[2] === '' ? null : m[2]
  }
  if (location === null) return { kind: 'document', status: code, reason, headers, contentType, location }
  if (location.startsWith('/') && !location.startsWith('//')) {
    // §6.2.2: a local redirect is a Location alone. With a Status other than 200 (say 303 to a
    // path), it is a redirect the client follows.
    if (status === null || code === 200) {
      if (headers.length > 0) throw new CgiOutputError('a local redirect (Location: /path) must come without other headers')
      return { kind: 'local-redirect', status: 200, reason: null, headers, contentType, location }
    }
    headers.push(['location', location])
    return { kind: 'client-redirect', status: code, reason, headers, contentType, location }
  }
  if (!SCHEME.test(location)) throw new CgiOutputError(`Location ${JSON.stringify(location.slice(0, 80))} is neither an absolute URI nor a local path`)
  headers.push(['location', location])
  return { kind: 'client-redirect', status: status === null ? 302 : code, reason: status === null ? null : reason, headers, contentType, location }
}

/**
 * Reads a CGI response's head from output arriving in chunks. `push` returns the head and the
 * body bytes that came with it once the blank line is seen; null while it needs more. Throws a
 * CgiOutputError when the head is invalid or longer than `maxHeaderBytes`.
 */
export class CgiHeadReader {
  readonly #max: number
  #chunks: Buffer[] = []
  #length = 0
  #done = false

  constructor(maxHeaderBytes: number) {
    this.#max = maxHeaderBytes
  }

  push(chunk: Buffer): { head: CgiHead; body: Buffer } | null {
    if (this.#done) throw new Error('CgiHeadReader: the head was already read')
    // Re-scan from a little before the new chunk: the blank line may straddle two chunks.
    const from = Math.max(0, this.#length - 3)
    this.#chunks.push(chunk)
    this.#length += chunk.length
    const all = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#length)
    this.#chunks = [all]
    const end = findBlankLine(all, from)
    if (end === null) {
      if (this.#length > this.#max) throw new CgiOutputError(`the response head is longer than ${this.#max} bytes`, true)
      return null
    }
    if (end.headEnd > this.#max) throw new CgiOutputError(`the response head is longer than ${this.#max} bytes`, true)
    this.#done = true
    const head = parseCgiHead(all.subarray(0, end.headEnd))
    return { head, body: all.subarray(end.bodyStart) }
  }

  /** The output ended: whatever came was not a complete head. */
  end(): never {
    throw new CgiOutputError(this.#length === 0 ? 'the program wrote nothing' : 'the output ended before the blank line that ends the head')
  }
}

/**
 * The first blank line at or after `from`: LF LF, CRLF CRLF, or a mix. `headEnd` excludes the
 * line end of the last header. A head that is only the blank line (no headers) is found too.
 */
function findBlankLine(buf: Buffer, from: number): { headEnd: number; bodyStart: number } | null {
  if (from === 0) {
    if (buf[0] === 0x0a) return { headEnd: 0, bodyStart: 1 }
    if (buf[0] === 0x0d && buf[1] === 0x0a) return { headEnd: 0, bodyStart: 2 }
  }
  for (let i = buf.indexOf(0x0a, from); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    const next = buf[i + 1]
    if (next === 0x0a) return { headEnd: i, bodyStart: i + 2 }
    if (next === 0x0d && buf[i + 2] === 0x0a) return { headEnd: i, bodyStart: i + 3 }
  }
  return null
}
