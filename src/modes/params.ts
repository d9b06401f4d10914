import { quote, ResidentError } from '../errors.ts'
import type { ParamSpec, ScalarParam } from '../sdk/params.ts'

const TYPES = new Set(['integer', 'number', 'string', 'boolean', 'enum', 'array'])
const SCALAR_KEYS = {
  integer: ['min', 'max'], number: ['min', 'max'], string: ['minLength', 'maxLength', 'pattern'],
  boolean: [], enum: ['values'], array: ['items', 'minItems', 'maxItems'],
} satisfies Record<string, string[]>
const COMMON_KEYS = ['type', 'default', 'optional', 'description']

/** Problems in a command's parameter declarations, checked once at load. */
export function checkParamSpecs(command: string, params: unknown): string[] {
  const problems: string[] = []
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return [`commands.${command}.params must be an object`]
  for (const [name, spec] of Object.entries(params)) checkOne(`commands.${command}.params.${name}`, spec, problems, true)
  return problems
}

function checkOne(where: string, spec: unknown, problems: string[], allowArray: boolean): void {
  if (typeof spec !== 'object' || spec === null) { problems.push(`${where} must be a parameter declaration such as param.integer()`); return }
  const s = spec as Record<string, unknown>
  if (typeof s.type !== 'string' || !TYPES.has(s.type)) { problems.push(`${where}.type must be one of ${[...TYPES].join(', ')}`); return }
  if (s.type === 'array' && !allowArray) { problems.push(`${where}: arrays of arrays are not supported`); return }
  const allowed = new Set([...COMMON_KEYS, ...SCALAR_KEYS[s.type as keyof typeof SCALAR_KEYS]])
  for (const k of Object.keys(s)) if (!allowed.has(k)) problems.push(`${where}: unknown key "${k}" for type ${s.type}`)
  if (s.type === 'enum' && (!Array.isArray(s.values) || s.values.length === 0 || s.values.some((v) => typeof v !== 'string'))) {
    problems.push(`${where}.values must be a non-empty array of strings`)
  }
  if (s.type === 'string' && s.pattern !== undefined) {
    try { new RegExp(String(s.pattern), 'u') } catch { problems.push(`${where}.pattern is not a valid regular expression`) }
  }
  if (s.type === 'array') checkOne(`${where}.items`, s.items, problems, false)
  if (s.default !== undefined && problems.length === 0) {
    try { coerce(where, spec as ParamSpec, s.default) } catch (e) { problems.push(`${where}.default: ${(e as ResidentError).message}`) }
  }
}

function fail(param: string, rule: string, message: string): never {
  throw new ResidentError('RES_ERR_BAD_PARAM', `parameter "${param}" ${message}`, { data: { param, rule } })
}

const isDigit = (c: number) => c >= 48 && c <= 57

/**
 * Whether `s` is a decimal number, `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`, or
 * with `integer` only `[+-]? digits`. One pass, each character looked at once: a regex such as
 * `\d+\.?\d*` backtracks quadratically on a run of digits followed by anything else.
 */
export function isDecimal(s: string, integer = false): boolean {
  const n = s.length
  let i = 0
  if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++
  let digits = 0
  while (i < n && isDigit(s.charCodeAt(i))) { i++; digits++ }
  if (integer) return digits > 0 && i === n
  if (i < n && s.charCodeAt(i) === 46 /* . */) {
    i++
    while (i < n && isDigit(s.charCodeAt(i))) { i++; digits++ }
  }
  if (digits === 0) return false
  if (i < n && (s.charCodeAt(i) | 32) === 101 /* e */) {
    i++
    if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++
    let exponent = 0
    while (i < n && isDigit(s.charCodeAt(i))) { i++; exponent++ }
    if (exponent === 0) return false
  }
  return i === n
}
const TRUE = new Set(['true', '1', 'yes', 'on', ''])
const FALSE = new Set(['false', '0', 'no', 'off'])

function coerceScalar(name: string, spec: ScalarParam, raw: unknown, maxLength: number): unknown {
  if (Array.isArray(raw)) fail(name, 'single', 'must be given once, not as a list')
  // A declared maxLength is the author's own cap (checked below); without one, limits.paramLength.
  if (typeof raw === 'string' && raw.length > maxLength && !(spec.type === 'string' && spec.maxLength !== undefined)) {
    fail(name, 'maxLength', `must be at most ${maxLength} characters long (limits.paramLength)`)
  }
  switch (spec.type) {
    case 'integer': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && isDecimal(raw.trim(), true) ? Number(raw) : NaN
      if (!Number.isSafeInteger(n)) fail(name, 'integer', `must be an integer, got ${quote(raw)}`)
      return range(name, spec, n)
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && isDecimal(raw.trim()) ? Number(raw) : NaN
      if (!Number.isFinite(n)) fail(name, 'number', `must be a number, got ${quote(raw)}`)
      return range(name, spec, n)
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw
      const s = typeof raw === 'string' ? raw.trim().toLowerCase() : typeof raw === 'number' ? String(raw) : undefined
      if (s !== undefined && TRUE.has(s)) return true
      if (s !== undefined && FALSE.has(s)) return false
      return fail(name, 'boolean', `must be true or false, got ${quote(raw)}`)
    }
    case 'string': {
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') fail(name, 'string', 'must be a string')
      const s = String(raw)
      if (spec.minLength !== undefined && s.length < spec.minLength) fail(name, 'minLength', `must be at least ${spec.minLength} characters long`)
      if (spec.maxLength !== undefined && s.length > spec.maxLength) fail(name, 'maxLength', `must be at most ${spec.maxLength} characters long`)
      if (spec.pattern !== undefined && !new RegExp(spec.pattern, 'u').test(s)) fail(name, 'pattern', `must match ${spec.pattern}`)
      return s
    }
    case 'enum': {
      if (typeof raw !== 'string' || !spec.values.includes(raw)) fail(name, 'enum', `must be one of ${spec.values.join(', ')}, got ${quote(raw)}`)
      return raw
    }
  }
}

function range(name: string, spec: { min?: number; max?: number }, n: number): number {
  if (spec.min !== undefined && n < spec.min) fail(name, 'min', `must be at least ${spec.min}`)
  if (spec.max !== undefined && n > spec.max) fail(name, 'max', `must be at most ${spec.max}`)
  return n
}

function coerce(name: string, spec: ParamSpec, raw: unknown, maxLength = Infinity): unknown {
  if (spec.type !== 'array') return coerceScalar(name, spec, raw, maxLength)
  const list = Array.isArray(raw) ? raw : [raw]
  if (spec.minItems !== undefined && list.length < spec.minItems) fail(name, 'minItems', `must have at least ${spec.minItems} items`)
  if (spec.maxItems !== undefined && list.length > spec.maxItems) fail(name, 'maxItems', `must have at most ${spec.maxItems} items`)
  return list.map((item, i) => coerceScalar(`${name}[${i}]`, spec.items, item, maxLength))
}

/**
 * Validates and coerces `input` (query and body merged) against a command's declarations. Only
 * declared parameters come out; the raw values stay on the request. Throws RES_ERR_BAD_PARAM
 * naming the first parameter that fails and the rule it broke.
 */
export function coerceParams(specs: Record<string, ParamSpec>, input: Record<string, unknown>, maxLength = Infinity): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  // Own keys only: a `for…in` would also walk whatever someone added to Object.prototype.
  for (const name of Object.keys(specs)) {
    const spec = specs[name]!
    const raw = Object.prototype.hasOwnProperty.call(input, name) ? input[name] : undefined
    let value: unknown
    if (raw === undefined || raw === null) {
      if (spec.default !== undefined) value = structuredClone(spec.default)
      else if (spec.optional) continue
      else fail(name, 'required', 'is required')
    } else value = coerce(name, spec, raw, maxLength)
    setOwn(out, name, value)
  }
  return out
}

/** `out[key] = value`, except that a `__proto__` key becomes an own property instead of a prototype. */
export function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  else out[key] = value
}

/** Query and body merged into one object (body wins), safe against `__proto__` keys. */
export function mergeInputs(query: Record<string, unknown>, body: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(query)) setOwn(out, k, query[k])
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && !ArrayBuffer.isView(body)) {
    for (const k of Object.keys(body)) setOwn(out, k, (body as Record<string, unknown>)[k])
  }
  return out
}
