import path from 'node:path'
import { readConfigFile, resolveConfig } from '../config/load.ts'
import type { ResidentConfig } from '../config/types.ts'
import { modeOf } from '../config/modes.ts'
import { listModules } from '../loader/discover.ts'
import { buildServer, type ResidentServer, type ServerOptions } from '../server/app.ts'
import { createLogger, flushLogs, reopenLogFiles } from '../server/logger.ts'
import { flagsToConfig, type ServeFlags } from './args.ts'

export interface StartOptions {
  flags: ServeFlags; env: NodeJS.ProcessEnv; cwd: string; development: boolean
  /** Already read (main reads it first to decide between one process and a cluster). */
  config?: ResidentConfig
  /** A cluster worker's hooks (see src/cluster/worker.ts). */
  serverOptions?: Pick<ServerOptions, 'cluster' | 'clusterView'>
}

/** Reads and validates the config: the file, then the environment, then flags. Throws RES_ERR_CONFIG. */
export function loadConfig(o: StartOptions): ResidentConfig {
  const { input, file } = readConfigFile(o.flags.config, o.cwd)
  const merged = { ...input, ...flagsToConfig(o.flags, o.env) }
  if (o.development) merged.development = true
  const config = resolveConfig(merged, { cwd: o.cwd, file })
  // --mode switches every extension, whatever the file says of each.
  if (o.flags.mode !== undefined) for (const s of Object.values(config.extensions)) s.mode = null
  return config
}

/** Pretty logs in development and on a terminal. */
export const prettyLogs = (development: boolean): boolean => development || process.stdout.isTTY === true

/** Reads config (file, then environment, then flags), builds the server and listens. */
export async function startServer(o: StartOptions): Promise<{ server: ResidentServer; url: string }> {
  const config = o.config ?? loadConfig(o)
  const logger = createLogger(config, prettyLogs(o.development))
  // resident dev loads filters as they are saved, the first one included: it keeps the filter hooks.
  const server = await buildServer(config, { logger, filterHooks: o.development, ...o.serverOptions })
  const address = await server.app.listen({ port: config.port, host: config.host })
  const url = address.replace('[::1]', 'localhost')
  await logBanner(server, config, url, o.development)
  return { server, url }
}

async function logBanner(server: ResidentServer, config: ResidentConfig, url: string, development: boolean): Promise<void> {
  const rel = (p: string) => path.relative(process.cwd(), p) || '.'
  const names = [...new Set([...await listModules(config.extensionsDir), ...Object.keys(config.extensions).filter((n) => config.extensions[n]!.entry)])].sort()
  const lines = [`Resident listening on ${url}`, `  extensions (${rel(config.extensionsDir)}), default mode ${config.mode}: ${names.length === 0 ? 'none' : ''}`]
  const width = Math.max(0, ...names.map((n) => n.length))
  for (const n of names) lines.push(`    ${`${url}/${n}/`.padEnd(url.length + width + 3)}  ${modeOf(config, n)}`)
  const order = server.filters.describe()
  lines.push(`  filters (${rel(config.filtersDir)}), in the order they run: ${order.length === 0 ? (development ? 'none' : 'none (adding one needs a restart)') : ''}`)
  for (const l of order) lines.push(`    ${l}`)
  if (order.length > 0) lines.push('    (onAccessDenied and onSendResponse run in reverse order)')
  if (config.file) lines.push(`  config: ${rel(config.file)}`)
  lines.push(`  dashboard: ${url}/_resident/ (${config.admin.token ? 'token required' : 'loopback only'}); metrics: ${url}/_resident/metrics; health: ${url}/_resident/health, ${url}/_resident/ready`)
  server.log.info({ url, mode: config.mode, extensions: names.map((n) => ({ name: n, mode: modeOf(config, n) })), filters: order }, lines.join('\n'))
  // With a log file, the terminal would otherwise show nothing at all.
  if (config.log.file) process.stdout.write(`Resident listening on ${url} (log: ${config.log.file})\n`)
}

/**
 * SIGINT/SIGTERM: stop accepting, drain, dispose, exit 0; a second signal exits at once. Returns
 * the stop for a cluster primary's shutdown message (which, unlike a second signal, never hurries it).
 */
export function stopOnSignals(server: ResidentServer): () => void {
  let stopping = false
  const stop = (signal: NodeJS.Signals, asked = false) => {
    if (stopping && asked) return
    if (stopping) {
      server.log.warn(`${signal} again: exiting without waiting`)
      process.exit(1)
    }
    stopping = true
    server.log.info(`${signal}: draining in-flight requests and unloading extensions`)
    server.close().then(() => {
      server.log.info('stopped')
      return flushLogs().then(() => process.exit(0))
    }, (e: unknown) => {
      server.log.error({ err: e }, 'shutdown failed')
      return flushLogs().then(() => process.exit(1))
    })
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return () => stop('SIGTERM', true)
}

/** SIGUSR1: reopen the log file by name (logrotate's postrotate; nginx's USR1). Replaces Node's inspector-on-SIGUSR1. */
export function reopenLogsOnSigusr1(server: ResidentServer): void {
  process.on('SIGUSR1', () => {
    const n = reopenLogFiles()
    server.log.info(n > 0 ? 'SIGUSR1: log file reopened' : 'SIGUSR1: no log file to reopen (logging to standard output)')
  })
}
