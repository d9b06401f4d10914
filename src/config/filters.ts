import { resolvePackageEntry } from './package-entry.ts'
import { isModuleName } from './names.ts'
import type { FilterSettings, FiltersConfig } from './types.ts'

const SECTION_KEYS = new Set(['order', 'modules'])
const MODULE_KEYS = new Set(['config', 'package', 'enabled'])

/**
 * Validates the `filters` section:
 * `{ "order": ["request-id", …], "modules": { "<name>": { "config": {…}, "package": "npm-name", "enabled": true } } }`.
 * Package names resolve from `base` (the config file's folder) now, so a missing one is a config error.
 */
export function resolveFiltersConfig(input: unknown, base: string, problems: string[]): FiltersConfig {
  const out: FiltersConfig = { order: [], modules: Object.create(null) as FiltersConfig['modules'] }
  if (input === undefined) return out
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push('"filters" must be an object with "order" and "modules"')
    return out
  }
  const s = input as Record<string, unknown>
  for (const k of Object.keys(s)) if (!SECTION_KEYS.has(k)) problems.push(`unknown setting "filters.${k}"`)
  if (s.order !== undefined) {
    if (!Array.isArray(s.order) || !s.order.every((n) => typeof n === 'string' && isModuleName(n))) {
      problems.push('"filters.order" must be a list of filter names (a-z, 0-9, -)')
    } else if (new Set(s.order).size !== s.order.length) {
      problems.push('"filters.order" lists a filter twice')
    } else out.order = [...s.order as string[]]
  }
  const modules = s.modules ?? Object.create(null)
  if (typeof modules !== 'object' || modules === null || Array.isArray(modules)) {
    problems.push('"filters.modules" must be an object keyed by filter name')
    return out
  }
  for (const [name, raw] of Object.entries(modules as Record<string, unknown>)) {
    const at = `filters.modules.${name}`
    if (!isModuleName(name)) { problems.push(`"${at}": a filter name must match [a-z0-9][a-z0-9-]*`); continue }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { problems.push(`"${at}" must be an object`); continue }
    const m = raw as Record<string, unknown>
    for (const k of Object.keys(m)) if (!MODULE_KEYS.has(k)) problems.push(`unknown setting "${at}.${k}"`)
    const settings: FilterSettings = { config: {}, entry: null, enabled: true }
    if (m.config !== undefined) {
      if (typeof m.config !== 'object' || m.config === null || Array.isArray(m.config)) problems.push(`"${at}.config" must be an object`)
      else settings.config = m.config as Record<string, unknown>
    }
    if (m.enabled !== undefined) {
      if (typeof m.enabled !== 'boolean') problems.push(`"${at}.enabled" must be true or false`)
      else settings.enabled = m.enabled
    }
    if (m.package !== undefined) {
      if (typeof m.package !== 'string' || m.package === '') problems.push(`"${at}.package" must be an npm package name`)
      else {
        try { settings.entry = resolvePackageEntry(m.package, base) } catch (e) { problems.push(`"${at}.package": ${(e as Error).message}`) }
      }
    }
    out.modules[name] = settings
  }
  return out
}
