import { ResidentError } from '../errors.ts'
import { setOwn } from '../modes/params.ts'

export interface ParsedBody { body: unknown; contentType: string | null }

/** How complex a JSON body may be before it is parsed (limits.jsonDepth, limits.jsonNodes). */
export interface JsonLimits { jsonDepth: number; jsonNodes: number }

const NO_JSON_LIMITS: JsonLimits = { jsonDepth: Infinity, jsonNodes: Infinity }

/**
 * Refuses a JSON body that would nest deeper than `jsonDepth` or make more than `jsonNodes` arrays,
 * objects and values, before JSON.parse makes them: a 1 MB body of `[[],[],…]` costs about 28 MB
 * of heap once parsed, and a deep one overflows the stack of whatever walks it. One pass over the
 * bytes, no allocation; malformed input is left to JSON.parse to describe.
 */
export function checkJsonShape(raw: Buffer, limits: JsonLimits): void {
  let depth = 0
  let nodes = 1
  let inString = false
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (inString) {
      if (c === 92 /* \\ */) i++
      else if (c === 34 /* " */) inString = false
      continue
    }
    if (c === 34) inString = true
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > limits.jsonDepth) throw new ResidentError('RES_ERR_BODY_TOO_DEEP', `the JSON body nests deeper than ${limits.jsonDepth} levels (limits.jsonDepth)`)
      if (++nodes > limits.jsonNodes) break
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--
    else if (c === 44 /* , */ && ++nodes > limits.jsonNodes) break
  }
  if (nodes > limits.jsonNodes) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the JSON body holds more than ${limits.jsonNodes} arrays, objects and values (limits.jsonNodes)`)
}

function mediaType(header: string | undefined): string | null {
  if (!header) return null
  const t = header.split(';', 1)[0]!.trim().toLowerCase()
  return t === '' ? null : t
}

/**
 * `a=1&a=2&b=3` → { a: ['1', '2'], b: '3' } (query strings and urlencoded forms alike), in time
 * linear in the input: a repeated key appends to its one array. More than `limit` parameters is a
 * 400 naming the limit (checked before anything is decoded).
 */
export function parseForm(text: string, limit = Infinity): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  if (text === '') return out
  if (limit !== Infinity) checkParameterCount(text, limit)
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined
    // Values are strings, so an array here is one this parse made: append, never copy.
    if (prev === undefined) setOwn(out, k, v)
    else if (Array.isArray(prev)) prev.push(v)
    else setOwn(out, k, [prev, v])
  }
  return out
}

function checkParameterCount(text: string, limit: number): void {
  let count = 0
  let start = 0
  while (start <= text.length) {
    let end = text.indexOf('&', start)
    if (end === -1) end = text.length
    if (end > start && ++count > limit) {
      throw new ResidentError('RES_ERR_TOO_MANY_PARAMETERS', `the request has more than ${limit} parameters (the parameterLimit setting)`, {
        data: { limit },
      })
    }
    start = end + 1
  }
}

const NO_BODY: ParsedBody = Object.freeze({ body: undefined, contentType: null })

/**
 * Parses a request body by its content type: JSON, urlencoded forms and text are understood;
 * `application/octet-stream`, a body without a type and the types a command `accepts` stay bytes;
 * anything else is a 415.
 */
export function parseBody(raw: Buffer, contentTypeHeader: string | undefined, accepts: readonly string[], limits: JsonLimits = NO_JSON_LIMITS, parameterLimit = Infinity): ParsedBody {
  if (raw.length === 0 && contentTypeHeader === undefined) return NO_BODY // most GETs: nothing to allocate
  const contentType = mediaType(contentTypeHeader)
  if (raw.length === 0) return { body: undefined, contentType }
  if (contentType === null || contentType === 'application/octet-stream' || accepts.includes(contentType) || accepts.includes('*/*')) {
    return { body: raw, contentType }
  }
  if (contentType === 'application/json' || contentType.endsWith('+json')) {
    checkJsonShape(raw, limits)
    try {
      return { body: JSON.parse(raw.toString('utf8')), contentType }
    } catch (e) {
      throw new ResidentError('RES_ERR_BAD_BODY', `malformed JSON body: ${(e as Error).message}`)
    }
  }
  if (contentType === 'application/x-www-form-urlencoded') return { body: parseForm(raw.toString('utf8'), parameterLimit), contentType }
  if (contentType.startsWith('text/')) return { body: raw.toString('utf8'), contentType }
  throw new ResidentError('RES_ERR_UNSUPPORTED_MEDIA_TYPE', `content type "${contentType}" is not accepted here; send JSON, a urlencoded form, text or application/octet-stream`)
}
