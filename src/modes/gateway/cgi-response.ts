/**
 * A CGI response header block (FastCGI STDOUT, a CGI program's stdout) read into an HTTP status
 * and headers. Lines end with LF or CRLF; `Status` sets the status (with or without a reason),
 * `Location` without `Status` means 302; hop-by-hop fields are dropped.
 */
export interface CgiHead {
  status: number
  headers: Array<[string, string]>
}

export class CgiResponseError extends Error {
  override name = 'CgiResponseError'
}

const NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection'])

/** Collects bytes until the blank line that ends the header block, then parses it. */
export class CgiHeadReader {
  #parts: Buffer[] = []
  #size = 0
  constructor(private readonly limit = 64 * 1024) {}

  /** Returns the head and the body bytes that followed it once the head is complete, else null. */
  push(chunk: Buffer): { head: CgiHead; rest: Buffer } | null {
    this.#parts.push(chunk)
    this.#size += chunk.length
    const all = this.#parts.length === 1 ? chunk : Buffer.concat(this.#parts, this.#size)
    const end = findHeadEnd(all)
    if (end === null) {
      if (this.#size > this.limit) throw new CgiResponseError(`the response's header block is larger than ${this.limit} bytes`)
      this.#parts = [all]
      return null
    }
    this.#parts = []
    return { head: parseCgiHead(all.toString('latin1', 0, end.head)), rest: all.subarray(end.body) }
  }
}

function findHeadEnd(b: Buffer): { head: number; body: number } | null {
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) {
    if (b[i + 1] === 10) return { head: i, body: i + 2 }
    if (b[i + 1] === 13 && b[i + 2] === 10) return { head: i, body: i + 3 }
  }
  return null
}

export function parseCgiHead(text: string): CgiHead {
  let status: number | null = null
  let location = false
  const headers: Array<[string, string]> = []
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0) throw new CgiResponseError(`a response header line has no name: ${JSON.stringify(line.slice(0, 80))}`)
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (!NAME.test(name)) throw new CgiResponseError(`a response header name is invalid: ${JSON.stringify(name.slice(0, 80))}`)
    if (/[\r\0]/.test(value)) throw new CgiResponseError(`the response header ${name} has a control character in its value`)
    const lower = name.toLowerCase()
    if (lower === 'status') {
      const m = /^(\d{3})(?:\s.*)?$/.exec(value)
      if (!m || Number(m[1]) < 100) throw new CgiResponseError(`the Status header is not a status: ${JSON.stringify(value.slice(0, 80))}`)
      status = Number(m[1])
      continue
    }
    if (HOP.has(lower)) continue
    if (lower === 'location') location = true
    headers.push([lower, value])
  }
  return { status: status ?? (location ? 302 : 200), headers }
}
