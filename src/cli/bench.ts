// `resident bench`: parse the flags, check them, run, and print the table, JSON or HTML.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkClaims } from '../bench/claims.ts'
import { benchDocument } from '../bench/report/document.ts'
import { renderHtml } from '../bench/report/html.ts'
import { renderTable } from '../bench/report/table.ts'
import { procAvailable } from '../bench/proc.ts'
import { runBench } from '../bench/run.ts'
import { BASELINES, baselineId, benchTargets, findBaseline } from '../bench/targets/all.ts'
import { MODES, type BenchMode } from '../bench/targets/modes.ts'
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts'
import { parseDuration } from '../config/units.ts'
import { findEntry } from '../loader/discover.ts'
import { parseFlags, UsageError } from './args.ts'
import { loadConfig } from './serve.ts'

export const benchOptions = {
  extensions: { type: 'string', short: 'e' },
  config: { type: 'string' },
  extension: { type: 'string', short: 'x' },
  command: { type: 'string', short: 'c' },
  params: { type: 'string', multiple: true },
  method: { type: 'string', short: 'm' },
  body: { type: 'string' },
  'content-type': { type: 'string' },
  modes: { type: 'string' },
  baselines: { type: 'string' },
  duration: { type: 'string', short: 'd' },
  warmup: { type: 'string' },
  connections: { type: 'string' },
  rounds: { type: 'string', short: 'r' },
  json: { type: 'boolean' },
  html: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export const BENCH_HELP = `resident bench — the same command in every mode and against baselines, in one run

Usage: resident bench [options]
  -e, --extensions <dir>    extensions folder (default: the config's, else ./extensions, else
                            Resident's examples)
      --config <file|none>  the configuration every mode serves with: its filters, limits and
                            extension settings (default ./resident.config.json when there is one;
                            "none": no filters, the command and its tier alone)
  -x, --extension <name>    extension to bench (default hello)
  -c, --command <name>      command to bench (default greet)
      --params k=v          a query parameter; repeat for more (default name=bench for hello.greet)
  -m, --method <verb>       HTTP method (default GET, or POST with --body)
      --body <file>         request body; --content-type sets its type (default by file name)
      --modes <list>        comma-separated: ${MODES.join(',')} (default all)
      --baselines <list>    comma-separated, "all" or "none" (default all):
                            ${Object.keys(BASELINES).map(baselineId).join(', ')}
  -d, --duration <t>        load per round: seconds or a duration such as 500ms (default 3)
      --warmup <t>          warm-up load before each, as --duration; 0 for none (default 1)
      --connections <n>     concurrent connections (default 32)
  -r, --rounds <n>          rounds; targets alternate order each round (default 3)
      --json                print every round as one JSON document instead of the table
      --html <file>         also write a self-contained HTML report
`

const positive = (name: string, value: string | undefined, fallback: number, integer: boolean): number => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)) || n > 100_000) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${value}"`)
  }
  return n
}

// A bare number is seconds (as autocannon takes it); "500ms", "2s", "1m" are accepted too.
const seconds = (name: string, value: string | undefined, fallback: number, zero = false): number => {
  if (value === undefined) return fallback
  const s = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : (parseDuration(value) ?? NaN) / 1000
  if (!Number.isFinite(s) || (s === 0 && !zero) || s < 0 || s > 3600) {
    throw new UsageError(`--${name} must be seconds ("3") or a duration ("500ms", "2s"), ${zero ? 'at least 0' : 'above 0'} and at most an hour, got "${value}"`)
  }
  return s
}

const list = (value: string | undefined): string[] | undefined =>
  value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean)

const TYPES: Record<string, string> = { '.json': 'application/json', '.txt': 'text/plain', '.form': 'application/x-www-form-urlencoded' }

/**
 * The configuration file the modes serve with: --config, or ./resident.config.json as
 * `resident serve` finds it; null for none. Checked here, so a bad one is one clear error (exit 2)
 * rather than every mode failing to start.
 */
function benchConfig(flag: string | undefined): { file: string; extensionsDir: string } | null {
  if (flag === 'none') return null
  if (flag === undefined && !existsSync(DEFAULT_CONFIG_FILE)) return null
  if (flag !== undefined && !existsSync(flag)) throw new UsageError(`--config: no file ${path.resolve(flag)}`)
  const loaded = loadConfig({ flags: { config: flag }, env: {}, cwd: process.cwd(), development: false })
  return { file: loaded.file!, extensionsDir: loaded.extensionsDir }
}

export async function bench(args: string[]): Promise<void> {
  const f = parseFlags(args, benchOptions) as Record<string, string | boolean | string[] | undefined>
  if (f.help) { process.stdout.write(BENCH_HELP); return }
  if (!procAvailable()) throw new UsageError('resident bench reads CPU time and memory from /proc, which this system lacks (Linux only)')
  const config = benchConfig(f.config as string | undefined)
  const examples = fileURLToPath(new URL('../../extensions', import.meta.url))
  const given = f.extensions as string | undefined
  const extensionsDir = path.resolve(given ?? config?.extensionsDir ?? (existsSync('extensions') ? 'extensions' : examples))
  if (!existsSync(extensionsDir)) throw new UsageError(`--extensions: no folder ${extensionsDir}`)
  const extension = (f.extension as string | undefined) ?? 'hello'
  const command = (f.command as string | undefined) ?? 'greet'
  if (!(await findEntry(extensionsDir, extension))) throw new UsageError(`no extension "${extension}" in ${extensionsDir}`)
  if (!/^[A-Za-z0-9_$]+$/.test(command)) throw new UsageError(`--command "${command}" is not a command name`)
  const rawParams = (f.params as string[] | undefined) ?? (extension === 'hello' && command === 'greet' ? ['name=bench'] : [])
  const params = rawParams.map((p): [string, string] => {
    const at = p.indexOf('=')
    if (at <= 0) throw new UsageError(`--params takes k=v, got "${p}"`)
    return [p.slice(0, at), p.slice(at + 1)]
  })
  let body: Buffer | undefined
  let contentType = f['content-type'] as string | undefined
  if (f.body !== undefined) {
    try { body = readFileSync(f.body as string) } catch (e) { throw new UsageError(`--body: ${(e as Error).message}`) }
    contentType ??= TYPES[path.extname(f.body as string)] ?? 'application/octet-stream'
  }
  const method = ((f.method as string | undefined) ?? (body ? 'POST' : 'GET')).toUpperCase()
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method "${method}" is not an HTTP method`)
  const modes = (list(f.modes as string | undefined) ?? [...MODES]) as BenchMode[]
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new UsageError(`--modes: unknown mode "${m}" (the modes are ${MODES.join(', ')})`)
  const b = list(f.baselines as string | undefined) ?? ['all']
  const baselines = b.includes('all') ? Object.keys(BASELINES) : b.includes('none') ? [] : b.map((x) => {
    const name = findBaseline(x)
    if (!name) throw new UsageError(`--baselines: unknown baseline "${x}" (they are ${Object.keys(BASELINES).map(baselineId).join(', ')})`)
    return name
  })
  if (modes.length + baselines.length === 0) throw new UsageError('nothing to bench: give --modes or --baselines')
  const settings = {
    duration: seconds('duration', f.duration as string | undefined, 3),
    warmup: seconds('warmup', f.warmup as string | undefined, 1, true),
    connections: positive('connections', f.connections as string | undefined, 32, true),
    rounds: positive('rounds', f.rounds as string | undefined, 3, true),
    coldSamples: 5,
  }
  const html = f.html as string | undefined
  const scratch = mkdtempSync(path.join(tmpdir(), 'resident-bench-'))
  const live = process.stderr.isTTY === true && !process.env.CI
  const progress = live ? (line: string) => process.stderr.write(`\r\x1b[2K${line}`) : () => {}
  const cleanup = () => rmSync(scratch, { recursive: true, force: true })
  process.once('SIGINT', () => { cleanup(); process.exit(130) })
  try {
    const targets = benchTargets(modes, baselines)
    const bin = fileURLToPath(new URL('../../bin/resident.js', import.meta.url))
    const results = await runBench(targets, { extensionsDir, extension, command, params, method, body, contentType, scratch, bin, config: config?.file ?? null, extensionsGiven: given !== undefined }, settings, progress)
    if (live) process.stderr.write('\r\x1b[2K')
    const claims = checkClaims(results)
    const doc = benchDocument(results, claims, { ...settings, extension, command, params: Object.fromEntries(params), method, modes, config: config?.file ?? null })
    if (f.json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
    else {
      const served = config ? `the modes serve with ${path.relative(process.cwd(), config.file) || config.file} (its filters and settings)` : 'the modes serve with no configuration: no filters'
      process.stdout.write(`${served}\n\n${renderTable(results, claims)}`)
    }
    if (html) {
      writeFileSync(html, renderHtml(doc))
      if (!f.json) process.stdout.write(`\nHTML report: ${path.resolve(html)}\n`)
    }
  } finally {
    cleanup()
  }
}
