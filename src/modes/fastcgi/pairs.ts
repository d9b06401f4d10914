import { FastCgiProtocolError, FCGI_MAX_SENT_CONTENT, encodeRecord } from './records.ts'

// Name-value pairs (PARAMS, GET_VALUES, GET_VALUES_RESULT): each length is one byte up to 127,
// else four bytes with the top bit set.

export type Pairs = Array<[string, string]> | Record<string, string>

function lengthBytes(n: number): number { return n > 127 ? 4 : 1 }

function writeLength(out: Buffer, at: number, n: number): number {
  if (n <= 127) { out[at] = n; return at + 1 }
  out.writeUInt32BE((n | 0x80000000) >>> 0, at)
  return at + 4
}

const MAX_PAIR_LENGTH = 0x7fffffff

/** One pair's bytes. */
export function encodePair(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'utf8')
  const v = Buffer.from(value, 'utf8')
  if (n.length > MAX_PAIR_LENGTH || v.length > MAX_PAIR_LENGTH) throw new RangeError('a FastCGI name or value is longer than 2^31 - 1 bytes')
  const out = Buffer.allocUnsafe(lengthBytes(n.length) + lengthBytes(v.length) + n.length + v.length)
  let at = writeLength(out, 0, n.length)
  at = writeLength(out, at, v.length)
  out.set(n, at)
  out.set(v, at + n.length)
  return out
}

function entries(pairs: Pairs): Array<[string, string]> {
  return Array.isArray(pairs) ? pairs : Object.entries(pairs)
}

/** Pairs as one buffer (the content of a GET_VALUES or GET_VALUES_RESULT record). */
export function encodePairs(pairs: Pairs): Buffer {
  return Buffer.concat(entries(pairs).map(([n, v]) => encodePair(n, v)))
}

/**
 * Pairs as records of `type` (PARAMS), never splitting a pair across two records: PHP parses
 * PARAMS one record at a time. A pair too large for one record is an error. No terminator.
 */
export function encodePairRecords(type: number, requestId: number, pairs: Pairs): Buffer[] {
  const out: Buffer[] = []
  let batch: Buffer[] = []
  let size = 0
  const flush = () => {
    if (size === 0) return
    out.push(encodeRecord(type, requestId, batch.length === 1 ? batch[0]! : Buffer.concat(batch, size)))
    batch = []
    size = 0
  }
  for (const [name, value] of entries(pairs)) {
    const pair = encodePair(name, value)
    if (pair.length > FCGI_MAX_SENT_CONTENT) {
      throw new RangeError(`the FastCGI parameter ${name} is ${pair.length} bytes; one record carries at most ${FCGI_MAX_SENT_CONTENT}`)
    }
    if (size + pair.length > FCGI_MAX_SENT_CONTENT) flush()
    batch.push(pair)
    size += pair.length
  }
  flush()
  return out
}

function readLength(buf: Buffer, at: number): [number, number] | null {
  if (at >= buf.length) return null
  const b = buf[at]!
  if ((b & 0x80) === 0) return [b, at + 1]
  if (at + 4 > buf.length) return null
  return [((b & 0x7f) * 0x1000000) + (buf[at + 1]! << 16) + (buf[at + 2]! << 8) + buf[at + 3]!, at + 4]
}

/**
 * Decodes a complete run of pairs (a whole PARAMS stream, or one GET_VALUES body), names and
 * values as UTF-8. A pair that runs past the end is an error.
 */
export function decodePairs(buf: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let at = 0
  while (at < buf.length) {
    const n = readLength(buf, at)
    const v = n && readLength(buf, n[1])
    if (!n || !v || v[1] + n[0] + v[0] > buf.length) {
      throw new FastCgiProtocolError(`a name-value pair runs past the end of its stream (at byte ${at} of ${buf.length})`)
    }
    const nameEnd = v[1] + n[0]
    out.push([buf.toString('utf8', v[1], nameEnd), buf.toString('utf8', nameEnd, nameEnd + v[0])])
    at = nameEnd + v[0]
  }
  return out
}

/**
 * Collects a PARAMS stream across records, so a pair split between two records (as Apache and
 * cgi-fcgi send them) reads whole. `limit` bounds what one request may send.
 */
export class PairCollector {
  private parts: Buffer[] = []
  private size = 0
  constructor(private readonly limit: number) {}

  /** Adds one record's content (copied, so the rest of the socket's chunk is not kept alive). */
  add(content: Buffer): void {
    this.size += content.length
    if (this.size > this.limit) throw new FastCgiProtocolError(`the PARAMS stream is larger than ${this.limit} bytes`)
    this.parts.push(Buffer.from(content))
  }

  finish(): Array<[string, string]> {
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)
    this.parts = []
    this.size = 0
    return decodePairs(all)
  }
}
