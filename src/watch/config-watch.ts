import type { ResidentConfig } from '../config/types.ts'
import type { Logger } from '../sdk/types.ts'

/** Settings only a restart can apply (the socket, the folders, fastify's body limit, dev mode). */
const RESTART_KEYS = ['host', 'port', 'extensionsDir', 'filtersDir', 'bodyLimit', 'development'] as const

export interface ConfigChange {
  /** Extensions whose own `config` changed: reload them. */
  extensions: string[]
  /** Settings that changed but need a restart. */
  restart: string[]
  /** Settings applied in place. */
  applied: string[]
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Applies a re-read configuration to the live one, in place (the registry, dispatcher and admin
 * routes share that object): what can change at run time changes; the rest is reported.
 */
export function applyConfig(live: ResidentConfig, next: ResidentConfig, log: Logger & { level?: string }): ConfigChange {
  const change: ConfigChange = { extensions: [], restart: [], applied: [] }
  for (const key of RESTART_KEYS) {
    if (!same(live[key], next[key])) change.restart.push(`${key} (${JSON.stringify(live[key])} → ${JSON.stringify(next[key])})`)
  }
  if (live.logLevel !== next.logLevel) {
    live.logLevel = next.logLevel
    if (typeof log.level === 'string') log.level = next.logLevel
    change.applied.push('logLevel')
  }
  for (const key of ['requestTimeout', 'drainTimeout'] as const) {
    if (live[key] !== next[key]) { live[key] = next[key]; change.applied.push(key) }
  }
  if (live.admin.token !== next.admin.token) { live.admin.token = next.admin.token; change.applied.push('admin.token') }
  const names = new Set([...Object.keys(live.extensions), ...Object.keys(next.extensions)])
  for (const name of names) {
    if (!same(live.extensions[name]?.config ?? {}, next.extensions[name]?.config ?? {})) change.extensions.push(name)
  }
  if (change.extensions.length > 0) change.applied.push('extensions')
  live.extensions = next.extensions
  return change
}
