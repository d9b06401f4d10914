import net from 'node:net'

/** One HTTP/1.1 response parsed off a raw socket. */
export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** A raw TCP connection to `base` (http://host:port): what a client writes, byte for byte. */
export function connect(base: string): Promise<net.Socket> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => resolve(s))
    s.once('error', reject)
  })
}

/** Writes `data`, then collects everything until the server closes or `ms` pass; the socket is destroyed after. */
export async function exchange(base: string, data: string | Buffer, ms = 5000): Promise<string> {
  const s = await connect(base)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const done = () => { clearTimeout(timer); s.destroy(); resolve(Buffer.concat(chunks).toString('latin1')) }
    const timer = setTimeout(done, ms)
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('close', done)
    s.on('error', () => {})
    s.write(data)
  })
}

/**
 * Splits a byte stream into responses (content-length and chunked bodies); a cut-off tail is
 * dropped. `heads[i]` says the i-th request was a HEAD (its answer has no body whatever its headers say).
 */
export function parseResponses(text: string, heads: boolean[] = []): RawResponse[] {
  const out: RawResponse[] = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end === -1) break
    const lines = text.slice(at, end).split('\r\n')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    at = end + 4
    let body = ''
    const informational = status >= 100 && status < 200
    if (informational || heads[out.length]) {
      // no body
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const eol = text.indexOf('\r\n', at)
        if (eol === -1) return out
        const size = parseInt(text.slice(at, eol), 16)
        at = eol + 2
        if (size === 0) { at += 2; break }
        body += text.slice(at, at + size)
        at += size + 2
      }
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length'])
      if (at + n > text.length) return out
      body = text.slice(at, at + n)
      at += n
    }
    if (informational) continue
    out.push({ status, headers, body })
  }
  return out
}

/** `GET <path>` in raw bytes, with a Host. */
export const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`

/** `POST <path>` with a body, in raw bytes. */
export const post = (path: string, body: string, type = 'application/json'): string =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
