import { Buffer } from 'node:buffer'

/**
 * Bytes ready to be transferred: the same view when it owns its whole ArrayBuffer, else a copy.
 * A small Buffer is a slice of Node's shared 8 KB pool; transferring or cloning it would hand the
 * other side the whole pool (other requests' bytes), so it is copied instead.
 */
export function transferable(bytes: Uint8Array): Uint8Array {
  const owns = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
  return owns ? bytes : new Uint8Array(bytes)
}

/** A received Uint8Array as a Buffer over the same memory (what commands and the response expect). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
