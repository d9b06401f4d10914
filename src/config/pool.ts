// Validation of the fastcgi mode's settings: the pool of fcgi-workers (`pool` at the top level,
// `extensions.<name>.pool` over it) and an external pool (`extensions.<name>.fastcgi.address`).
import type { ExternalFastcgi, PoolSettings, ResidentConfig } from './types.ts'
import { parseDuration } from './units.ts'

export const POOL_KEYS = ['pool'] as const

const PMS = ['static', 'dynamic', 'ondemand']

/** A `pool` section over `base`: only the keys given change; the result is checked as a whole. */
export function resolvePool(where: string, v: unknown, base: PoolSettings, problems: string[]): PoolSettings {
  if (v === undefined) return base
  if (typeof v !== 'object' || v === null || Array.isArray(v)) { problems.push(`"${where}" must be an object`); return base }
  const out: PoolSettings = { ...base }
  const count = (k: string, raw: unknown, min: number, max: number): number | undefined => {
    if (typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max) return raw
    problems.push(`"${where}.${k}" must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
    return undefined
  }
  const duration = (k: string, raw: unknown): number | undefined => {
    const n = parseDuration(raw)
    if (n === undefined) problems.push(`"${where}.${k}" must be a duration such as "10s" (0 = off), got ${JSON.stringify(raw)}`)
    return n
  }
  const given = v as Record<string, unknown>
  for (const [k, raw] of Object.entries(given)) {
    switch (k) {
      case 'pm':
        if (typeof raw === 'string' && PMS.includes(raw)) out.pm = raw as PoolSettings['pm']
        else problems.push(`"${where}.pm" must be one of ${PMS.join(', ')}, got ${JSON.stringify(raw)}`)
        break
      case 'maxChildren': out.maxChildren = count(k, raw, 1, 256) ?? out.maxChildren; break
      case 'startServers': out.startServers = count(k, raw, 0, 256) ?? out.startServers; break
      case 'minSpareServers': out.minSpareServers = count(k, raw, 0, 256) ?? out.minSpareServers; break
      case 'maxSpareServers': out.maxSpareServers = count(k, raw, 1, 256) ?? out.maxSpareServers; break
      case 'maxRequests': out.maxRequests = count(k, raw, 0, 1e9) ?? out.maxRequests; break
      case 'emergencyRestartThreshold': out.emergencyRestartThreshold = count(k, raw, 0, 1e6) ?? out.emergencyRestartThreshold; break
      case 'processIdleTimeout': out.processIdleTimeout = duration(k, raw) ?? out.processIdleTimeout; break
      case 'terminateTimeout': out.terminateTimeout = duration(k, raw) ?? out.terminateTimeout; break
      case 'slowlogTimeout': out.slowlogTimeout = duration(k, raw) ?? out.slowlogTimeout; break
      case 'hangGrace': {
        const n = duration(k, raw)
        if (n !== undefined && n < 10) problems.push(`"${where}.hangGrace" must be a duration of at least 10 ms, got ${JSON.stringify(raw)}`)
        else if (n !== undefined) out.hangGrace = n
        break
      }
      case 'emergencyRestartInterval': out.emergencyRestartInterval = duration(k, raw) ?? out.emergencyRestartInterval; break
      default: problems.push(`unknown setting "${where}.${k}"`)
    }
  }
  // PHP-FPM's rules: start between the spares, spares within maxChildren.
  if (given.startServers === undefined && out.pm === 'dynamic') out.startServers = Math.floor((out.minSpareServers + out.maxSpareServers) / 2)
  if (out.pm === 'dynamic') {
    if (out.minSpareServers > out.maxSpareServers) problems.push(`"${where}": minSpareServers (${out.minSpareServers}) is above maxSpareServers (${out.maxSpareServers})`)
    if (out.maxSpareServers > out.maxChildren) problems.push(`"${where}": maxSpareServers (${out.maxSpareServers}) is above maxChildren (${out.maxChildren})`)
    if (out.startServers < out.minSpareServers || out.startServers > out.maxSpareServers) problems.push(`"${where}": startServers (${out.startServers}) must lie between minSpareServers and maxSpareServers`)
  }
  return out
}

/** `extensions.<name>.fastcgi`: a pool someone else runs. */
export function resolveExternalFastcgi(where: string, v: unknown, problems: string[]): ExternalFastcgi | null {
  if (v === undefined || v === null) return null
  if (typeof v !== 'object' || Array.isArray(v)) { problems.push(`"${where}" must be an object such as { "address": "unix:/run/app.sock" }`); return null }
  const s = v as Record<string, unknown>
  for (const k of Object.keys(s)) if (k !== 'address' && k !== 'maxConns') problems.push(`unknown setting "${where}.${k}"`)
  const list = typeof s.address === 'string' ? [s.address] : Array.isArray(s.address) ? s.address : []
  if (list.length === 0 || !list.every((a) => typeof a === 'string' && /^(?:unix:\/.+|\/.+|(?:\[[^\]]+\]|[^:/\s]+):\d{1,5})$/.test(a))) {
    problems.push(`"${where}.address" must be "unix:/path" or "host:port", or a list of them`)
    return null
  }
  const maxConns = s.maxConns === undefined ? undefined : (typeof s.maxConns === 'number' && Number.isInteger(s.maxConns) && s.maxConns > 0 ? s.maxConns : undefined)
  if (s.maxConns !== undefined && maxConns === undefined) problems.push(`"${where}.maxConns" must be a whole number above 0`)
  return { addresses: list as string[], maxConns }
}

/** The pool settings of `name`: the top-level `pool` with `extensions.<name>.pool` over it. */
export function poolSettingsOf(config: Pick<ResidentConfig, 'pool' | 'extensions'>, name: string): PoolSettings {
  return config.extensions[name]?.pool ?? config.pool
}

/** The external pool of `name`, when someone else runs it. */
export function externalFastcgiOf(config: Pick<ResidentConfig, 'extensions'>, name: string): ExternalFastcgi | null {
  return config.extensions[name]?.fastcgi ?? null
}
