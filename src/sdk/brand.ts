// Brands survive two copies of the package (an author's own node_modules/resident beside the
// host's): `instanceof` fails across copies, a registered symbol does not.
export const EXTENSION_BASE = Symbol.for('resident.extension.base')
export const FILTER_BASE = Symbol.for('resident.filter.base')
export const HTTP_ERROR = Symbol.for('resident.http-error')

/** True when `value` is a class whose prototype chain reaches a (any copy of) base `brand`. */
export function extendsBase(value: unknown, brand: symbol): value is abstract new (...args: never[]) => object {
  if (typeof value !== 'function') return false
  for (let c: unknown = value; typeof c === 'function'; c = Object.getPrototypeOf(c)) {
    if (Object.prototype.hasOwnProperty.call(c, brand) && c !== value) return true
  }
  return false
}

/** True for the base class itself (where a prototype walk stops). */
export function isBase(value: unknown, brand: symbol): boolean {
  return typeof value === 'function' && Object.prototype.hasOwnProperty.call(value, brand)
}
/** How a stream returned through sse() or ndjson() is to be sent. */
export const STREAM_FORMAT = Symbol.for('resident.stream-format')
export const SSE_EVENT = Symbol.for('resident.sse-event')
