import { Buffer } from 'node:buffer'

/**
 * How the cgi mode hands a runner its invocation on stdin: one line of JSON (the invocation's
 * plain data, without its raw body), then the raw body's bytes. The environment could not carry
 * it: a parsed body may be megabytes, and Linux caps one variable at 128 KiB. JSON keeps what
 * crosses exact (headers as Node gave them, the user a filter attached, parsed params), so the
 * command sees the same request it would in process.
 */
export interface Frame<T> {
  meta: T
  raw: Uint8Array
}

const NL = 0x0a

/** The bytes of a frame: `JSON(meta + raw length)\n` then the raw bytes. JSON escapes every newline, so the first LF ends the head. */
export function encodeFrame<T extends object>(meta: T, raw: Uint8Array): Buffer {
  const head = Buffer.from(JSON.stringify({ meta, rawLength: raw.length }) + '\n', 'utf8')
  return raw.length === 0 ? head : Buffer.concat([head, raw], head.length + raw.length)
}

export class FrameError extends Error {
  override name = 'FrameError'
}

/** The frame in `bytes` (all of stdin). Throws a FrameError when it is not one. */
export function decodeFrame<T>(bytes: Buffer): Frame<T> {
  const nl = bytes.indexOf(NL)
  if (nl === -1) throw new FrameError('the invocation frame has no end of line')
  let head: { meta: T; rawLength: number }
  try {
    head = JSON.parse(bytes.toString('utf8', 0, nl)) as { meta: T; rawLength: number }
  } catch (e) {
    throw new FrameError(`the invocation frame is not JSON: ${(e as Error).message}`)
  }
  if (typeof head !== 'object' || head === null || !Number.isSafeInteger(head.rawLength) || head.rawLength < 0) throw new FrameError('the invocation frame has no raw length')
  if (bytes.length - nl - 1 !== head.rawLength) throw new FrameError(`the invocation frame's body is ${bytes.length - nl - 1} bytes, not ${head.rawLength}`)
  return { meta: head.meta, raw: bytes.subarray(nl + 1) }
}
