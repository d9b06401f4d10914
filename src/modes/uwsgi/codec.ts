// The uwsgi protocol's request packet, as nginx's uwsgi_pass and uWSGI speak it:
//
//   modifier1 (u8) | datasize (u16 little-endian) | modifier2 (u8)
//   then `datasize` bytes of vars: key_size (u16 LE) | key | val_size (u16 LE) | val, repeated
//   then the raw request body, CONTENT_LENGTH bytes, unframed.
//
// The answer is a plain HTTP/1.x response written on the same connection, which nginx reads to
// its Content-Length or to the connection's close (nginx never reuses a uwsgi connection).

/** modifier1 0: a request carrying CGI-style vars (WSGI's, and the one nginx sends by default). */
export const UWSGI_MODIFIER_VARS = 0
export const UWSGI_HEADER_SIZE = 4
/** The vars block's size is 16 bits wide: nginx refuses larger requests ("uwsgi request is too big"). */
export const UWSGI_MAX_VARS = 0xffff

export class UwsgiProtocolError extends Error {
  override name = 'UwsgiProtocolError'
}

export interface UwsgiRequestHead {
  modifier1: number
  modifier2: number
  /** The vars in the order sent; a repeated key keeps its last value. */
  vars: Map<string, string>
}

/** Encodes a request packet's header and vars block (a client's side; tests and bench use it). */
export function encodeUwsgiRequest(vars: Iterable<readonly [string, string]>, modifier1 = UWSGI_MODIFIER_VARS, modifier2 = 0): Buffer {
  const parts: Buffer[] = []
  let size = 0
  for (const [key, value] of vars) {
    const k = Buffer.from(key, 'latin1')
    const v = Buffer.from(value, 'latin1')
    if (k.length > 0xffff || v.length > 0xffff) throw new UwsgiProtocolError(`var ${key.slice(0, 32)} is longer than 65535 bytes`)
    const entry = Buffer.allocUnsafe(4 + k.length + v.length)
    entry.writeUInt16LE(k.length, 0)
    k.copy(entry, 2)
    entry.writeUInt16LE(v.length, 2 + k.length)
    v.copy(entry, 4 + k.length)
    parts.push(entry)
    size += entry.length
  }
  if (size > UWSGI_MAX_VARS) throw new UwsgiProtocolError(`the vars block is ${size} bytes; the protocol allows 65535`)
  const header = Buffer.from([modifier1 & 0xff, size & 0xff, size >> 8, modifier2 & 0xff])
  return Buffer.concat([header, ...parts], UWSGI_HEADER_SIZE + size)
}

/** Decodes a complete vars block. Throws on a key or value that runs past the block. */
export function decodeUwsgiVars(block: Buffer): Map<string, string> {
  const vars = new Map<string, string>()
  let at = 0
  while (at < block.length) {
    if (at + 2 > block.length) throw new UwsgiProtocolError(`truncated key size at byte ${at} of the vars block`)
    const keySize = block.readUInt16LE(at)
    at += 2
    if (at + keySize + 2 > block.length) throw new UwsgiProtocolError(`a key of ${keySize} bytes runs past the vars block`)
    const key = block.toString('latin1', at, at + keySize)
    at += keySize
    const valueSize = block.readUInt16LE(at)
    at += 2
    if (at + valueSize > block.length) throw new UwsgiProtocolError(`the value of ${key.slice(0, 32)} (${valueSize} bytes) runs past the vars block`)
    vars.set(key, block.toString('latin1', at, at + valueSize))
    at += valueSize
  }
  return vars
}

/**
 * Reads one request head from a byte stream fed in arbitrary chunks. `push` returns the head and
 * the bytes after it (the start of the body) once the vars block is complete, and undefined
 * until then. `maxVars` caps the block a peer may announce (uWSGI's own default is 4096).
 */
export class UwsgiHeadReader {
  #chunks: Buffer[] = []
  #length = 0
  #done = false

  constructor(private readonly maxVars = UWSGI_MAX_VARS) {}

  push(chunk: Buffer): { head: UwsgiRequestHead; rest: Buffer } | undefined {
    if (this.#done) throw new UwsgiProtocolError('the head was already read')
    this.#chunks.push(chunk)
    this.#length += chunk.length
    if (this.#length < UWSGI_HEADER_SIZE) return undefined
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length)
    this.#chunks = [all]
    const modifier1 = all[0]!
    const size = all.readUInt16LE(1)
    const modifier2 = all[3]!
    if (size > this.maxVars) throw new UwsgiProtocolError(`the vars block is ${size} bytes; this worker accepts ${this.maxVars}`)
    if (all.length < UWSGI_HEADER_SIZE + size) return undefined
    this.#done = true
    this.#chunks = []
    const vars = decodeUwsgiVars(all.subarray(UWSGI_HEADER_SIZE, UWSGI_HEADER_SIZE + size))
    return { head: { modifier1, modifier2, vars }, rest: all.subarray(UWSGI_HEADER_SIZE + size) }
  }
}
