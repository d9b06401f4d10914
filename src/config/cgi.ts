import path from 'node:path'
import type { CgiSettings } from './types.ts'
import { parseDuration, parseSize } from './units.ts'

const KEYS = new Set(['bin', 'interpreters', 'timeout', 'maxOutput', 'maxHeaderSize', 'passEnv', 'env', 'passAuthorization', 'spawn'])
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export const CGI_DEFAULTS: Omit<CgiSettings, 'bin' | 'interpreters'> = {
  timeout: 30_000,
  maxOutput: 64 * 1024 * 1024,
  maxHeaderSize: 16 * 1024,
  passEnv: ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'],
  env: {},
  passAuthorization: false,
  spawn: 'helper',
}

/**
 * Validates the `cgi` section:
 * `{ "bin": { "/cgi-bin/": "cgi-bin" }, "interpreters": { ".php": "php-cgi" }, "timeout": "30s", … }`.
 * Folders resolve against `base` (the config file's folder). Prefixes start and end with `/`.
 */
export function resolveCgiConfig(input: unknown, base: string, problems: string[]): CgiSettings {
  const out: CgiSettings = { bin: [], interpreters: {}, ...CGI_DEFAULTS, passEnv: [...CGI_DEFAULTS.passEnv], env: {} }
  if (input === undefined) return out
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push('"cgi" must be an object with "bin" and "interpreters"')
    return out
  }
  const s = input as Record<string, unknown>
  for (const k of Object.keys(s)) if (!KEYS.has(k)) problems.push(`unknown setting "cgi.${k}"`)
  const object = (key: string): Record<string, unknown> => {
    const v = s[key] ?? {}
    if (typeof v !== 'object' || v === null || Array.isArray(v)) { problems.push(`"cgi.${key}" must be an object`); return {} }
    return v as Record<string, unknown>
  }
  for (const [prefix, dir] of Object.entries(object('bin'))) {
    if (!/^\/(?:[A-Za-z0-9._~-]+\/)*$/.test(prefix) || prefix.split('/').some((p) => p === '.' || p === '..')) {
      problems.push(`"cgi.bin": the prefix "${prefix}" must start and end with "/" and hold only plain path segments`)
      continue
    }
    if (prefix === '/' || prefix.startsWith('/_resident/')) { problems.push(`"cgi.bin": the prefix "${prefix}" would shadow Resident's own routes`); continue }
    if (typeof dir !== 'string' || dir === '') { problems.push(`"cgi.bin.${prefix}" must be a folder`); continue }
    out.bin.push({ prefix, dir: path.resolve(base, dir) })
  }
  for (const [ext, program] of Object.entries(object('interpreters'))) {
    if (!/^\.[A-Za-z0-9]+$/.test(ext)) { problems.push(`"cgi.interpreters": "${ext}" must be a file extension such as ".php"`); continue }
    if (typeof program !== 'string' || program === '' || /\s/.test(program)) { problems.push(`"cgi.interpreters.${ext}" must be a program name or path (no arguments)`); continue }
    out.interpreters[ext.toLowerCase()] = program
  }
  const num = (key: 'timeout' | 'maxOutput' | 'maxHeaderSize', parse: (v: unknown) => number | undefined, what: string) => {
    if (s[key] === undefined) return
    const n = parse(s[key])
    if (n === undefined) problems.push(`"cgi.${key}" must be ${what}, got ${JSON.stringify(s[key])}`)
    else out[key] = n
  }
  num('timeout', parseDuration, 'a duration such as "30s" (0 = none)')
  num('maxOutput', parseSize, 'a size such as "64MB"')
  num('maxHeaderSize', parseSize, 'a size such as "16KB"')
  if (out.maxHeaderSize < 256) problems.push('"cgi.maxHeaderSize" must be at least 256 bytes')
  if (s.passEnv !== undefined) {
    if (!Array.isArray(s.passEnv) || !s.passEnv.every((n) => typeof n === 'string' && ENV_NAME.test(n))) problems.push('"cgi.passEnv" must be a list of environment variable names')
    else out.passEnv = [...s.passEnv as string[]]
  }
  for (const [k, v] of Object.entries(object('env'))) {
    if (!ENV_NAME.test(k) || typeof v !== 'string' || /[\0\r\n]/.test(v)) problems.push(`"cgi.env.${k}" must be a variable name with a one-line string value`)
    else out.env[k] = v
  }
  if (s.passAuthorization !== undefined) {
    if (typeof s.passAuthorization !== 'boolean') problems.push('"cgi.passAuthorization" must be true or false')
    else out.passAuthorization = s.passAuthorization
  }
  if (s.spawn !== undefined) {
    if (s.spawn !== 'helper' && s.spawn !== 'direct') problems.push(`"cgi.spawn" must be "helper" or "direct", got ${JSON.stringify(s.spawn)}`)
    else out.spawn = s.spawn
  }
  return out
}
