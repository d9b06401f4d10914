import { parseArgs, type ParseArgsConfig } from 'node:util'
import { isMode, MODES } from '../config/modes.ts'
import { parseWorkers } from '../config/operations.ts'

/** A usage error: the CLI prints it with a hint and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export const serveOptions = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string', short: 'H' },
  config: { type: 'string', short: 'c' },
  extensions: { type: 'string', short: 'e' },
  filters: { type: 'string', short: 'f' },
  mode: { type: 'string', short: 'm' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options']

/** `resident serve` only: dev's watcher reloads one process. */
export const serveOnlyOptions = {
  ...serveOptions,
  workers: { type: 'string', short: 'w' },
} as const satisfies ParseArgsConfig['options']

export const devOptions = {
  ...serveOptions,
  quiet: { type: 'string', short: 'q' },
} as const satisfies ParseArgsConfig['options']

export type ServeFlags = { port?: string; host?: string; config?: string; extensions?: string; filters?: string; workers?: string; mode?: string; help?: boolean }

/** parseArgs with its errors turned into UsageErrors; the values as plain strings and booleans. */
export function parseFlags(args: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

/** `resident new`'s arguments: positionals, and `--sdk <spec>` (what the project's package.json depends on). */
export function parseNewArgs(args: string[]): { values: { sdk?: string; help?: boolean }; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { sdk: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true })
    return { values: r.values as { sdk?: string; help?: boolean }, positionals: r.positionals }
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

/** Config input from flags and the environment (flags win over PORT/HOST, which win over the file). */
export function flagsToConfig(flags: ServeFlags, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const port = flags.port ?? env.PORT
  if (port !== undefined && port !== '') {
    if (!/^\d+$/.test(port) || Number(port) > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got "${port}"`)
    out.port = Number(port)
  }
  const host = flags.host ?? env.HOST
  if (host !== undefined && host !== '') out.host = host
  if (flags.extensions !== undefined) {
    if (flags.extensions === '') throw new UsageError('--extensions needs a folder')
    out.extensionsDir = flags.extensions
  }
  if (flags.workers !== undefined) {
    const n = parseWorkers(flags.workers)
    if (n === undefined) throw new UsageError(`--workers must be an integer ≥ 0 or "auto", got "${flags.workers}"`)
    out.workers = n
  }
  if (flags.filters !== undefined) {
    if (flags.filters === '') throw new UsageError('--filters needs a folder')
    out.filtersDir = flags.filters
  }
  if (flags.mode !== undefined) {
    if (!isMode(flags.mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}, got "${flags.mode}"`)
    out.mode = flags.mode
  }
  return out
}
