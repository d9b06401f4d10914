// Validation of the residency settings: idleTimeout, memory, unload, rapidFail.
import { defaults } from './defaults.ts'
import type { MemorySettings, RapidFailSettings, ResidentConfig, UnloadSettings } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

export const RESIDENCY_KEYS = ['idleTimeout', 'memory', 'unload', 'rapidFail'] as const

type Residency = Pick<ResidentConfig, 'idleTimeout' | 'memory' | 'unload' | 'rapidFail'>

const fraction = (v: unknown) => (typeof v === 'number' && v > 0 && v < 1 ? v : undefined)
const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined)
const DURATION = 'a duration such as 30000 or "30s"'

/** Reads one object-valued section, reporting unknown keys and bad values into `problems`. */
export function section<T extends object>(input: unknown, name: string, fallback: T,
  fields: { [K in keyof T]: [(v: unknown) => T[K] | undefined, string] }, problems: string[]): T {
  if (input === undefined) return { ...fallback }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push(`"${name}" must be an object`)
    return { ...fallback }
  }
  const out = { ...fallback }
  for (const [k, v] of Object.entries(input)) {
    const field = Object.prototype.hasOwnProperty.call(fields, k) ? fields[k as keyof T] : undefined
    if (!field) { problems.push(`unknown setting "${name}.${k}"`); continue }
    const parsed = field[0](v)
    if (parsed === undefined) problems.push(`"${name}.${k}" must be ${field[1]}, got ${JSON.stringify(v)}`)
    else out[k as keyof T] = parsed
  }
  return out
}

/** Validates the residency part of a config object; problems are appended, defaults fill gaps. */
export function resolveResidency(input: Record<string, unknown>, problems: string[]): Residency {
  let idleTimeout = defaults.idleTimeout
  if (input.idleTimeout !== undefined) {
    const n = parseDuration(input.idleTimeout)
    if (n === undefined) problems.push(`"idleTimeout" must be ${DURATION} (0 = never), got ${JSON.stringify(input.idleTimeout)}`)
    else idleTimeout = n
  }
  const memory = section<MemorySettings>(input.memory, 'memory', defaults.memory, {
    budget: [(v) => (v === null ? null : parseSize(v) || undefined), 'a size such as "512MB", or null'],
    highWatermark: [fraction, 'a fraction between 0 and 1'],
    lowWatermark: [fraction, 'a fraction between 0 and 1'],
    checkInterval: [(v) => { const n = parseDuration(v); return n !== undefined && n >= 10 ? n : undefined }, 'a duration of at least 10 ms'],
    minResidency: [parseDuration, `${DURATION} (0 = none)`],
  }, problems)
  if (memory.lowWatermark >= memory.highWatermark) problems.push('"memory.lowWatermark" must be below "memory.highWatermark"')
  const unload = section<UnloadSettings>(input.unload, 'unload', defaults.unload, {
    maxDeclines: [count, 'an integer ≥ 0'],
    collectionGrace: [parseDuration, DURATION],
    esbuildIdle: [parseDuration, `${DURATION} (0 = keep it running)`],
  }, problems)
  const rapidFail = section<RapidFailSettings>(input.rapidFail, 'rapidFail', defaults.rapidFail, {
    maxFailures: [(v) => (count(v) ? v as number : undefined), 'an integer ≥ 1'],
    window: [parseDuration, DURATION],
    backoff: [(v) => parseDuration(v) || undefined, 'a duration above 0'],
    maxBackoff: [parseDuration, DURATION],
  }, problems)
  if (rapidFail.maxBackoff < rapidFail.backoff) problems.push('"rapidFail.maxBackoff" must not be below "rapidFail.backoff"')
  return { idleTimeout, memory, unload, rapidFail }
}

/** An extension's own idleTimeout (null = inherit the top-level one). */
export function resolveExtensionIdle(name: string, v: unknown, problems: string[]): number | null {
  if (v === undefined || v === null) return null
  const n = parseDuration(v)
  if (n === undefined) { problems.push(`"extensions.${name}.idleTimeout" must be ${DURATION} (0 = never), got ${JSON.stringify(v)}`); return null }
  return n
}
