// Validation of the operations settings: log, slowLog, workers.
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { defaults } from './defaults.ts'
import { section } from './residency.ts'
import type { LogSettings, ResidentConfig, SlowLogSettings } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

export const OPERATIONS_KEYS = ['log', 'slowLog', 'workers'] as const

type Operations = Pick<ResidentConfig, 'log' | 'slowLog' | 'workers'>

/** `workers`: an integer ≥ 0 or "auto" (one per available core); undefined when invalid. */
export function parseWorkers(v: unknown): number | undefined {
  if (v === 'auto') return availableParallelism()
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 1024 ? n : undefined
}

/** Validates the operations part of a config object; relative log files resolve against `base`. */
export function resolveOperations(input: Record<string, unknown>, base: string, problems: string[]): Operations {
  const log = section<LogSettings>(input.log, 'log', defaults.log, {
    file: [(v) => (v === null ? null : typeof v === 'string' && v !== '' ? path.resolve(base, v) : undefined), 'a file path, or null for standard output'],
    buffer: [(v) => { const n = v === 0 ? 0 : parseSize(v); return n !== undefined && n <= 16 * 1024 * 1024 ? n : undefined }, 'a size up to 16MB such as "64KB" (0 = unbuffered)'],
    flushInterval: [(v) => { const n = parseDuration(v); return n !== undefined && n >= 10 ? n : undefined }, 'a duration of at least 10 ms'],
  }, problems)
  const slowLog = section<SlowLogSettings>(input.slowLog, 'slowLog', defaults.slowLog, {
    threshold: [parseDuration, 'a duration such as "5s" (0 = off)'],
  }, problems)
  let workers = defaults.workers
  if (input.workers !== undefined) {
    const n = parseWorkers(input.workers)
    if (n === undefined) problems.push(`"workers" must be an integer ≥ 0 or "auto", got ${JSON.stringify(input.workers)}`)
    else workers = n
  }
  return { log, slowLog, workers }
}
