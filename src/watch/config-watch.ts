import type { ResidentConfig } from '../config/types.ts'
import type { Logger } from '../sdk/types.ts'

// Read afresh wherever they are used, so assigning them applies them.
const HOT = new Set(['logLevel', 'requestTimeout', 'drainTimeout', 'admin', 'idleTimeout'])
// Sub-settings that are fixed when the server starts (a timer's period, a watcher's grace).
const FIXED_SUB: Record<string, Set<string>> = { memory: new Set(['checkInterval']), unload: new Set(['collectionGrace', 'esbuildIdle']) }
// Handled on their own below.
const SPECIAL = new Set(['file', 'extensions', 'filters'])

export interface ConfigChange {
  /** Extensions whose own `config`, `mode` or `worker` changed: reload them. */
  extensions: string[]
  /** The filters section changed: reload the chain. */
  filters: boolean
  /** Settings that changed but need a restart. */
  restart: string[]
  /** Settings applied in place. */
  applied: string[]
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
const show = (v: unknown) => JSON.stringify(v)

/**
 * Applies a re-read configuration to the live one, in place (the registry, dispatcher, filter chain
 * and admin routes share that object): what can change at run time changes; the rest is reported.
 */
export function applyConfig(live: ResidentConfig, next: ResidentConfig, log: Logger & { level?: string }): ConfigChange {
  const change: ConfigChange = { extensions: [], filters: false, restart: [], applied: [] }
  const l = live as unknown as Record<string, unknown>
  const n = next as unknown as Record<string, unknown>
  for (const key of Object.keys(next)) {
    if (SPECIAL.has(key) || same(l[key], n[key])) continue
    const fixed = FIXED_SUB[key]
    if (HOT.has(key)) {
      l[key] = n[key]
      change.applied.push(key)
    } else if (fixed) {
      const liveSub = l[key] as Record<string, unknown>
      const nextSub = n[key] as Record<string, unknown>
      for (const sub of Object.keys(nextSub)) {
        if (same(liveSub[sub], nextSub[sub])) continue
        if (fixed.has(sub)) change.restart.push(`${key}.${sub} (${show(liveSub[sub])} → ${show(nextSub[sub])})`)
        else { liveSub[sub] = nextSub[sub]; change.applied.push(`${key}.${sub}`) }
      }
    } else {
      change.restart.push(`${key} (${show(l[key])} → ${show(n[key])})`)
    }
  }
  if (change.applied.includes('logLevel') && typeof log.level === 'string') log.level = next.logLevel
  const names = new Set([...Object.keys(live.extensions), ...Object.keys(next.extensions)])
  for (const name of names) {
    // Its own config, its mode or its worker settings: a reload loads it again with the new ones.
    const before = live.extensions[name], after = next.extensions[name]
    if (!same(before?.config ?? {}, after?.config ?? {}) || !same(before?.mode ?? null, after?.mode ?? null) ||
      !same(before?.worker ?? null, after?.worker ?? null)) change.extensions.push(name)
  }
  if (!same(live.extensions, next.extensions)) change.applied.push('extensions')
  live.extensions = next.extensions
  if (!same(live.filters, next.filters)) {
    live.filters = next.filters
    change.filters = true
    change.applied.push('filters')
  }
  return change
}
