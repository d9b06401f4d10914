// FastCGI 1.0 records: the 8-byte header, content up to 65 535 bytes, padding to 8.
// Written here rather than taken from npm: no well-kept library covers both the responder and
// the client side (node-fastcgi and fastcgi-client are small and little used).

export const FCGI_VERSION_1 = 1
export const FCGI_HEADER_LEN = 8
export const FCGI_MAX_CONTENT = 0xffff
/**
 * The most content one record carries when Resident sends it: a multiple of 8, so the padded
 * record stays within 65 535 bytes (PHP rejects `contentLength + paddingLength > 0xffff`).
 */
export const FCGI_MAX_SENT_CONTENT = 65528

export const Type = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11,
} as const

export const Role = { RESPONDER: 1, AUTHORIZER: 2, FILTER: 3 } as const
export const FCGI_KEEP_CONN = 1

export const ProtocolStatus = { REQUEST_COMPLETE: 0, CANT_MPX_CONN: 1, OVERLOADED: 2, UNKNOWN_ROLE: 3 } as const

/** A record as read: its content is a view into the bytes received (copy it to keep it). */
export interface FcgiRecord {
  type: number
  requestId: number
  content: Buffer
}

/** The peer sent bytes that are not FastCGI 1.0. */
export class FastCgiProtocolError extends Error {
  override name = 'FastCgiProtocolError'
}

const PADDING = Buffer.alloc(8)

/** One record with its header and padding to a multiple of 8. `content` must be ≤ 65 535 bytes. */
export function encodeRecord(type: number, requestId: number, content: Uint8Array = PADDING.subarray(0, 0)): Buffer {
  const len = content.length
  if (len > FCGI_MAX_CONTENT) throw new RangeError(`a FastCGI record carries at most ${FCGI_MAX_CONTENT} bytes, got ${len}`)
  const padding = (8 - (len & 7)) & 7
  const out = Buffer.allocUnsafe(FCGI_HEADER_LEN + len + padding)
  out[0] = FCGI_VERSION_1
  out[1] = type
  out.writeUInt16BE(requestId, 2)
  out.writeUInt16BE(len, 4)
  out[6] = padding
  out[7] = 0
  out.set(content, FCGI_HEADER_LEN)
  out.fill(0, FCGI_HEADER_LEN + len)
  return out
}

/**
 * A stream's bytes as records of at most 65 528 bytes each, padded (an empty buffer yields no
 * record: the stream's terminator is sent separately, with `encodeRecord(type, id)`).
 */
export function encodeStream(type: number, requestId: number, data: Uint8Array): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < data.length; at += FCGI_MAX_SENT_CONTENT) {
    out.push(encodeRecord(type, requestId, data.subarray(at, Math.min(data.length, at + FCGI_MAX_SENT_CONTENT))))
  }
  return out
}

export function encodeBeginRequest(requestId: number, role: number, keepConn: boolean): Buffer {
  const body = Buffer.alloc(8)
  body.writeUInt16BE(role, 0)
  body[2] = keepConn ? FCGI_KEEP_CONN : 0
  return encodeRecord(Type.BEGIN_REQUEST, requestId, body)
}

export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const body = Buffer.alloc(8)
  body.writeUInt32BE(appStatus >>> 0, 0)
  body[4] = protocolStatus
  return encodeRecord(Type.END_REQUEST, requestId, body)
}

export function encodeUnknownType(type: number): Buffer {
  const body = Buffer.alloc(8)
  body[0] = type
  return encodeRecord(Type.UNKNOWN_TYPE, 0, body)
}

export interface BeginRequest { role: number; keepConn: boolean }
export interface EndRequest { appStatus: number; protocolStatus: number }

export function decodeBeginRequest(content: Buffer): BeginRequest {
  if (content.length !== 8) throw new FastCgiProtocolError(`BEGIN_REQUEST body must be 8 bytes, got ${content.length}`)
  return { role: content.readUInt16BE(0), keepConn: (content[2]! & FCGI_KEEP_CONN) !== 0 }
}

export function decodeEndRequest(content: Buffer): EndRequest {
  if (content.length !== 8) throw new FastCgiProtocolError(`END_REQUEST body must be 8 bytes, got ${content.length}`)
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4]! }
}

/**
 * Splits a byte stream into records, however the bytes arrive. Returns the complete records in
 * each chunk; keeps the rest. Throws FastCgiProtocolError on a version other than 1; `end()`
 * throws when the stream stops inside a record, so a truncated peer is an error, not a wait.
 */
export class RecordReader {
  private rest: Buffer | null = null

  push(chunk: Buffer): FcgiRecord[] {
    let buf = chunk
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk])
      this.rest = null
    }
    const out: FcgiRecord[] = []
    let at = 0
    while (buf.length - at >= FCGI_HEADER_LEN) {
      const version = buf[at]!
      if (version !== FCGI_VERSION_1) {
        throw new FastCgiProtocolError(`not a FastCGI 1.0 record: version byte ${version} (0x${buf.subarray(at, at + 8).toString('hex')})`)
      }
      const len = (buf[at + 4]! << 8) | buf[at + 5]!
      const total = FCGI_HEADER_LEN + len + buf[at + 6]!
      if (buf.length - at < total) break
      out.push({ type: buf[at + 1]!, requestId: (buf[at + 2]! << 8) | buf[at + 3]!, content: buf.subarray(at + FCGI_HEADER_LEN, at + FCGI_HEADER_LEN + len) })
      at += total
    }
    if (at < buf.length) this.rest = buf.subarray(at)
    return out
  }

  /** Bytes held back, waiting for the rest of a record. */
  get pending(): number { return this.rest?.length ?? 0 }

  end(): void {
    if (this.rest !== null) throw new FastCgiProtocolError(`the stream ended inside a record (${this.rest.length} bytes of it received)`)
  }
}
