// Validation of the "fastcgi" section: FastCGI apps Resident serves as a client.
import path from 'node:path'
import type { FastcgiAppSettings, FastcgiConfig } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

const APP_KEYS = new Set(['address', 'root', 'index', 'scriptExtensions', 'params', 'maxConns', 'connectTimeout', 'downTime', 'timeout', 'bodyLimit'])
const ADDRESS = /^(?:unix:\/.+|\/.+|(?:\[[^\]]+\]|[^:/\s]+):\d{1,5})$/

export function resolveFastcgi(input: unknown, base: string, bodyLimit: number, problems: string[]): FastcgiConfig {
  const out: FastcgiConfig = { apps: {} }
  if (input === undefined) return out
  if (typeof input !== 'object' || input === null || Array.isArray(input)) { problems.push('"fastcgi" must be an object'); return out }
  for (const k of Object.keys(input)) if (k !== 'apps') problems.push(`unknown setting "fastcgi.${k}"`)
  const apps = (input as Record<string, unknown>).apps ?? {}
  if (typeof apps !== 'object' || apps === null || Array.isArray(apps)) { problems.push('"fastcgi.apps" must be an object keyed by URL prefix'); return out }
  for (const [prefix, raw] of Object.entries(apps)) {
    const where = `fastcgi.apps["${prefix}"]`
    if (!/^\/(?:[A-Za-z0-9._~-]+\/)+$/.test(prefix) || prefix.includes('/../') || prefix.includes('/./')) {
      problems.push(`${where}: the prefix must be a path such as "/php/" (starting and ending with "/")`)
      continue
    }
    if (prefix.startsWith('/_resident/')) { problems.push(`${where}: /_resident/ is Resident's own`); continue }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { problems.push(`"${where}" must be an object`); continue }
    const s = raw as Record<string, unknown>
    for (const k of Object.keys(s)) if (!APP_KEYS.has(k)) problems.push(`unknown setting "${where}.${k}"`)
    const addresses = typeof s.address === 'string' ? [s.address] : Array.isArray(s.address) ? s.address : []
    if (addresses.length === 0 || !addresses.every((a) => typeof a === 'string' && ADDRESS.test(a))) {
      problems.push(`"${where}.address" must be "unix:/path/to.sock" or "host:port", or a list of them`)
    }
    if (typeof s.root !== 'string' || s.root === '') problems.push(`"${where}.root" must be the folder the app's scripts are in (on the backend's host)`)
    const num = (k: string, parse: (v: unknown) => number | undefined, fallback: number | undefined, what: string) => {
      if (s[k] === undefined) return fallback
      const n = parse(s[k])
      if (n === undefined) problems.push(`"${where}.${k}" must be ${what}, got ${JSON.stringify(s[k])}`)
      return n ?? fallback
    }
    const positive = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1024 ? v : undefined
    const params = s.params ?? {}
    if (typeof params !== 'object' || params === null || Array.isArray(params) || !Object.values(params).every((v) => typeof v === 'string')) {
      problems.push(`"${where}.params" must be an object of strings`)
    }
    const exts = s.scriptExtensions ?? ['.php']
    if (!Array.isArray(exts) || !exts.every((e) => typeof e === 'string' && /^\.[A-Za-z0-9]+$/.test(e))) problems.push(`"${where}.scriptExtensions" must be a list such as [".php"]`)
    const index = s.index ?? 'index.php'
    if (typeof index !== 'string' || index.includes('/')) problems.push(`"${where}.index" must be a file name`)
    const app: FastcgiAppSettings = {
      prefix,
      addresses: addresses as string[],
      // A root is a path on the backend's host: relative ones resolve against the config's folder,
      // which is right when the backend runs here.
      root: typeof s.root === 'string' ? path.resolve(base, s.root) : '',
      index: typeof index === 'string' ? index : 'index.php',
      scriptExtensions: Array.isArray(exts) ? exts as string[] : ['.php'],
      params: params as Record<string, string>,
      maxConns: num('maxConns', positive, undefined, 'a whole number from 1 to 1024'),
      connectTimeout: num('connectTimeout', parseDuration, 5_000, 'a duration such as "5s"')!,
      downTime: num('downTime', parseDuration, 10_000, 'a duration such as "10s"')!,
      timeout: num('timeout', parseDuration, 0, 'a duration such as "60s" (0 = none)')!,
      bodyLimit: num('bodyLimit', parseSize, bodyLimit, 'a size such as "8MB"')!,
    }
    out.apps[prefix] = app
  }
  return out
}
