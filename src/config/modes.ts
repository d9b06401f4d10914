// Validation of the isolation settings: the mode (top level and per extension) and the worker pool.
import type { ResidentConfig, WorkerSettings } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

/** Where a generation runs: the host's own isolate, a worker thread, a FastCGI process pool, a CGI process per request. */
export const MODES = ['inprocess', 'worker', 'fastcgi', 'cgi'] as const
export type Mode = (typeof MODES)[number]

export const MODE_KEYS = ['mode', 'worker'] as const

const RESOURCE_LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'] as const

export const defaultWorker: WorkerSettings = { pool: 1, resourceLimits: {}, maxExternal: null, hangGrace: 500 }

export function isMode(v: unknown): v is Mode {
  return typeof v === 'string' && (MODES as readonly string[]).includes(v)
}

/** A mode name, or undefined (with the problem recorded). */
export function resolveMode(where: string, v: unknown, problems: string[]): Mode | undefined {
  if (v === undefined) return undefined
  if (!isMode(v)) { problems.push(`"${where}" must be one of ${MODES.join(', ')}, got ${JSON.stringify(v)}`); return undefined }
  return v
}

/** A `worker` section over `base`: only the keys given change. */
export function resolveWorker(where: string, v: unknown, base: WorkerSettings, problems: string[]): WorkerSettings {
  if (v === undefined) return base
  if (typeof v !== 'object' || v === null || Array.isArray(v)) { problems.push(`"${where}" must be an object`); return base }
  const out: WorkerSettings = { ...base, resourceLimits: { ...base.resourceLimits } }
  for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
    switch (k) {
      case 'pool':
        if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 1 && raw <= 64) out.pool = raw
        else problems.push(`"${where}.pool" must be an integer from 1 to 64, got ${JSON.stringify(raw)}`)
        break
      case 'maxExternal': {
        const n = raw === null ? null : parseSize(raw)
        if (n === undefined || n === 0) problems.push(`"${where}.maxExternal" must be a size such as "256MB", or null, got ${JSON.stringify(raw)}`)
        else out.maxExternal = n
        break
      }
      case 'hangGrace': {
        const n = parseDuration(raw)
        if (n === undefined || n < 10) problems.push(`"${where}.hangGrace" must be a duration of at least 10 ms, got ${JSON.stringify(raw)}`)
        else out.hangGrace = n
        break
      }
      case 'resourceLimits': {
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { problems.push(`"${where}.resourceLimits" must be an object`); break }
        for (const [lk, lv] of Object.entries(raw as Record<string, unknown>)) {
          if (!(RESOURCE_LIMITS as readonly string[]).includes(lk)) { problems.push(`unknown setting "${where}.resourceLimits.${lk}" (one of ${RESOURCE_LIMITS.join(', ')})`); continue }
          if (typeof lv !== 'number' || !(lv > 0)) { problems.push(`"${where}.resourceLimits.${lk}" must be a number of megabytes above 0, got ${JSON.stringify(lv)}`); continue }
          out.resourceLimits[lk as (typeof RESOURCE_LIMITS)[number]] = lv
        }
        break
      }
      default:
        problems.push(`unknown setting "${where}.${k}"`)
    }
  }
  return out
}

/** The mode `name` runs in: its own `extensions.<name>.mode`, else the top-level `mode`. */
export function modeOf(config: Pick<ResidentConfig, 'mode' | 'extensions'>, name: string): Mode {
  return config.extensions[name]?.mode ?? config.mode
}

/** The worker settings of `name`: the top-level `worker` section with `extensions.<name>.worker` over it. */
export function workerSettingsOf(config: Pick<ResidentConfig, 'worker' | 'extensions'>, name: string): WorkerSettings {
  return config.extensions[name]?.worker ?? config.worker
}
