// Validation of the per-request cost limits (docs/operators/limits.md).
import { defaults } from './defaults.ts'
import { section } from './residency.ts'
import type { LimitSettings } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

const atLeast = (min: number) => (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= min ? v : undefined)

export function resolveLimits(input: unknown, problems: string[]): LimitSettings {
  return section<LimitSettings>(input, 'limits', defaults.limits, {
    maxInFlight: [atLeast(0), 'an integer ≥ 0 (0 = no limit)'],
    heapShed: [(v) => (typeof v === 'number' && v > 0 && v <= 1 ? v : undefined), 'a fraction above 0, at most 1 (1 = never)'],
    pipeline: [atLeast(1), 'an integer ≥ 1'],
    jsonDepth: [atLeast(1), 'an integer ≥ 1'],
    jsonNodes: [atLeast(1), 'an integer ≥ 1'],
    paramLength: [(v) => { const n = parseSize(v); return n !== undefined && n >= 1 ? n : undefined }, 'a size of at least 1 byte such as 65536 or "64KB"'],
    streamTimeout: [(v) => (v === null ? null : parseDuration(v)), 'a duration such as "5m", 0 (no limit) or null (requestTimeout)'],
  }, problems)
}
