// Reading objects that came from elsewhere (an extension's statics, a parse map, a config file,
// a request) by their own keys only: if any code in the process sets `Object.prototype.x`, an
// absent `x` must still read as absent, not as the polluted value.

const hasOwn = Object.prototype.hasOwnProperty

/** `obj[key]` if `obj` has it as its own property, else undefined. */
export function own(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null && hasOwn.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined
}

/**
 * A static of a class, inherited from its parent classes but never from `Function.prototype` or
 * `Object.prototype`.
 */
export function ownStatic(Class: Function, key: string): unknown {
  for (let c: unknown = Class; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (hasOwn.call(c, key)) return (c as unknown as Record<string, unknown>)[key]
  }
  return undefined
}

/** A copy of `obj`'s own enumerable properties in an object with no prototype. */
export function ownCopy<T extends object>(obj: T): T {
  const out = Object.create(null) as T
  for (const k of Object.keys(obj)) (out as Record<string, unknown>)[k] = (obj as Record<string, unknown>)[k]
  return out
}

/**
 * A deep copy of JSON-like data with every object made prototype-less, so that reading an absent
 * setting can never find an inherited one. Values under a `config` key (what an extension or filter
 * receives as `this.host.config`) are kept as given: they belong to the module.
 */
export function ownData(value: unknown, key = ''): unknown {
  if (key === 'config' || typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map((v) => ownData(v))
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value
  const out = Object.create(null) as Record<string, unknown>
  for (const k of Object.keys(value)) out[k] = ownData((value as Record<string, unknown>)[k], k)
  return out
}
