import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { ResidentError } from '../errors.ts'
import { ownData } from '../own.ts'
import { DEFAULT_CONFIG_FILE, defaults } from './defaults.ts'
import { resolveFiltersConfig } from './filters.ts'
import { resolvePackageEntry } from './package-entry.ts'
import { isModuleName } from './names.ts'
import { resolveFastcgi } from './fastcgi.ts'
import { resolveCgiConfig } from './cgi.ts'
import type { ExtensionSettings, ResidentConfig } from './types.ts'
import { parseDuration, parseSize } from './units.ts'
import { resolveLimits } from './limits.ts'
import { RESIDENCY_KEYS, resolveExtensionIdle, resolveResidency } from './residency.ts'
import { MODE_KEYS, resolveMode, resolveWorker } from './modes.ts'
import { POOL_KEYS, resolveExternalFastcgi, resolvePool } from './pool.ts'
import { POOL_DEFAULTS } from './defaults.ts'
import { OPERATIONS_KEYS, resolveOperations } from './operations.ts'

export type ConfigInput = Record<string, unknown>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const TOP_LEVEL = new Set([
  '$schema', 'host', 'port', 'extensionsDir', 'filtersDir', 'bodyLimit', 'parameterLimit', 'requestTimeout', 'drainTimeout',
  'headersTimeout', 'bodyTimeout', 'keepAliveTimeout', 'sendTimeout', 'maxConnections', 'requestIdHeader',
  'logLevel', 'development', 'sealPrototypes', 'faultTracing', 'admin', 'extensions', 'filters', 'fastcgi', 'cgi', 'limits',
  ...RESIDENCY_KEYS, ...MODE_KEYS, ...POOL_KEYS, ...OPERATIONS_KEYS,
])

/** Reads `file` (or ./resident.config.json when present) and returns its JSON, or {} when absent. */
export function readConfigFile(file: string | undefined, cwd = process.cwd()): { input: ConfigInput; file: string | null } {
  const chosen = file ? path.resolve(cwd, file) : path.resolve(cwd, DEFAULT_CONFIG_FILE)
  if (!existsSync(chosen)) {
    if (file) throw new ResidentError('RES_ERR_CONFIG', `config file not found: ${chosen}`)
    return { input: {}, file: null }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(chosen, 'utf8'))
  } catch (e) {
    throw new ResidentError('RES_ERR_CONFIG', `${chosen}: not valid JSON (${(e as Error).message})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ResidentError('RES_ERR_CONFIG', `${chosen}: the top level must be a JSON object`)
  }
  return { input: parsed as ConfigInput, file: chosen }
}

/**
 * Validates a config object (file contents merged with flags) and fills in defaults. Relative
 * folders resolve against the config file's folder, or `cwd` without one. All problems are
 * reported together.
 */
export function resolveConfig(given: ConfigInput, options: { cwd?: string; file?: string | null } = {}): ResidentConfig {
  const problems: string[] = []
  // Every setting is read from a prototype-less copy: an absent key is absent, whatever else in
  // the process has added to Object.prototype.
  const input = ownData(given) as ConfigInput
  const base = options.file ? path.dirname(options.file) : (options.cwd ?? process.cwd())
  for (const key of Object.keys(input)) if (!TOP_LEVEL.has(key)) problems.push(`unknown setting "${key}"`)

  const str = (key: string, fallback: string): string => {
    const v = input[key]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || v === '') { problems.push(`"${key}" must be a non-empty string`); return fallback }
    return v
  }
  const num = (key: string, fallback: number, parse: (v: unknown) => number | undefined, what: string): number => {
    const v = input[key]
    if (v === undefined) return fallback
    const n = parse(v)
    if (n === undefined) { problems.push(`"${key}" must be ${what}, got ${JSON.stringify(v)}`); return fallback }
    return n
  }

  const port = num('port', defaults.port, (v) => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined
  }, 'an integer from 0 to 65535')
  const logLevel = str('logLevel', defaults.logLevel)
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`"logLevel" must be one of ${LOG_LEVELS.join(', ')}`)
  const development = input.development ?? defaults.development
  if (typeof development !== 'boolean') problems.push('"development" must be true or false')
  const sealPrototypes = input.sealPrototypes ?? defaults.sealPrototypes
  if (typeof sealPrototypes !== 'boolean') problems.push('"sealPrototypes" must be true or false')
  const faultTracing = input.faultTracing ?? defaults.faultTracing
  if (faultTracing !== 'context' && faultTracing !== 'stack') problems.push('"faultTracing" must be "context" or "stack"')

  const admin = (input.admin ?? Object.create(null)) as Record<string, unknown>
  let token: string | null = null
  let hosts: string[] = []
  if (typeof admin !== 'object' || Array.isArray(admin)) problems.push('"admin" must be an object')
  else {
    for (const k of Object.keys(admin)) if (k !== 'token' && k !== 'hosts') problems.push(`unknown setting "admin.${k}"`)
    if (admin.hosts !== undefined) {
      if (!Array.isArray(admin.hosts) || !admin.hosts.every((h) => typeof h === 'string' && /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/i.test(h))) {
        problems.push('"admin.hosts" must be a list of host names without ports, such as ["admin.example.com"]')
      } else hosts = (admin.hosts as string[]).map((h) => h.toLowerCase())
    }
    if (admin.token !== undefined && admin.token !== null) {
      if (typeof admin.token !== 'string' || admin.token.length < 16) problems.push('"admin.token" must be a string of at least 16 characters')
      else token = admin.token
    }
  }

  const mode = resolveMode('mode', input.mode, problems) ?? defaults.mode
  const worker = resolveWorker('worker', input.worker, defaults.worker, problems)
  const pool = resolvePool('pool', input.pool, POOL_DEFAULTS, problems)
  const extensions = Object.create(null) as Record<string, ExtensionSettings>
  const extInput = input.extensions ?? Object.create(null)
  if (typeof extInput !== 'object' || extInput === null || Array.isArray(extInput)) problems.push('"extensions" must be an object keyed by extension name')
  else {
    for (const [name, raw] of Object.entries(extInput as Record<string, unknown>)) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { problems.push(`"extensions.${name}" must be an object`); continue }
      const s = raw as Record<string, unknown>
      for (const k of Object.keys(s)) if (!EXTENSION_KEYS.has(k)) problems.push(`unknown setting "extensions.${name}.${k}"`)
      const config = s.config ?? {}
      if (typeof config !== 'object' || config === null || Array.isArray(config)) problems.push(`"extensions.${name}.config" must be an object`)
      if (!isModuleName(name)) problems.push(`"extensions.${name}": an extension name must match [a-z0-9][a-z0-9-]*`)
      let entry: string | null = null
      if (s.package !== undefined) {
        if (typeof s.package !== 'string') problems.push(`"extensions.${name}.package" must be an npm package name`)
        else {
          try { entry = resolvePackageEntry(s.package, base) } catch (e) { problems.push(`"extensions.${name}.package": ${(e as Error).message}`) }
        }
      }
      extensions[name] = {
        config: config as Record<string, unknown>,
        idleTimeout: resolveExtensionIdle(name, s.idleTimeout, problems),
        mode: resolveMode(`extensions.${name}.mode`, s.mode, problems) ?? null,
        worker: s.worker === undefined ? null : resolveWorker(`extensions.${name}.worker`, s.worker, worker, problems),
        pool: s.pool === undefined ? null : resolvePool(`extensions.${name}.pool`, s.pool, pool, problems),
        fastcgi: resolveExternalFastcgi(`extensions.${name}.fastcgi`, s.fastcgi, problems),
        entry,
      }
    }
  }

  const residency = resolveResidency(input, problems)
  const bodyLimit = num('bodyLimit', defaults.bodyLimit, parseSize, 'a size such as 1048576 or "1MB"')
  const config: ResidentConfig = {
    host: str('host', defaults.host),
    port,
    extensionsDir: path.resolve(base, str('extensionsDir', defaults.extensionsDir)),
    filtersDir: path.resolve(base, str('filtersDir', defaults.filtersDir)),
    bodyLimit,
    parameterLimit: num('parameterLimit', defaults.parameterLimit, (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : undefined), 'an integer ≥ 1'),
    requestTimeout: num('requestTimeout', defaults.requestTimeout, parseDuration, 'a duration such as 30000 or "30s"'),
    drainTimeout: num('drainTimeout', defaults.drainTimeout, parseDuration, 'a duration such as 30000 or "30s"'),
    headersTimeout: num('headersTimeout', defaults.headersTimeout, positiveDuration, 'a duration above 0 such as 15000 or "15s"'),
    bodyTimeout: num('bodyTimeout', defaults.bodyTimeout, positiveDuration, 'a duration above 0 such as 30000 or "30s"'),
    keepAliveTimeout: num('keepAliveTimeout', defaults.keepAliveTimeout, positiveDuration, 'a duration above 0 such as 15000 or "15s"'),
    sendTimeout: num('sendTimeout', defaults.sendTimeout, positiveDuration, 'a duration above 0 such as 30000 or "30s"'),
    maxConnections: num('maxConnections', defaults.maxConnections, (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined), 'an integer ≥ 0 (0 = no limit)'),
    requestIdHeader: requestIdHeader(input.requestIdHeader, problems),
    logLevel: logLevel as ResidentConfig['logLevel'],
    development: development === true,
    sealPrototypes: sealPrototypes !== false,
    faultTracing: faultTracing === 'stack' ? 'stack' : 'context',
    admin: { token, hosts },
    mode,
    worker,
    pool,
    extensions,
    filters: resolveFiltersConfig(input.filters, base, problems),
    fastcgi: resolveFastcgi(input.fastcgi, base, bodyLimit, problems),
    cgi: resolveCgiConfig(input.cgi, base, problems),
    ...residency,
    limits: resolveLimits(input.limits, problems),
    ...resolveOperations(input, base, problems),
    file: options.file ?? null,
  }
  if (problems.length > 0) {
    const where = options.file ? ` in ${options.file}` : ''
    throw new ResidentError('RES_ERR_CONFIG', `invalid configuration${where}:\n  - ${problems.join('\n  - ')}`)
  }
  return config
}

const positiveDuration = (v: unknown) => { const n = parseDuration(v); return n !== undefined && n > 0 ? n : undefined }

const EXTENSION_KEYS = new Set(['config', 'idleTimeout', 'mode', 'worker', 'pool', 'fastcgi', 'package'])

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

function requestIdHeader(v: unknown, problems: string[]): string | null {
  if (v === undefined || v === null || v === false) return null
  if (typeof v !== 'string' || !HEADER_NAME.test(v.toLowerCase())) {
    problems.push(`"requestIdHeader" must be a header name such as "x-request-id" (or null), got ${JSON.stringify(v)}`)
    return null
  }
  return v.toLowerCase()
}
