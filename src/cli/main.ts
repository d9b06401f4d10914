import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { isResidentError } from '../errors.ts'
import { parseDuration } from '../config/units.ts'
import cluster from 'node:cluster'
import { devOptions, parseFlags, parseNewArgs, serveOnlyOptions, UsageError, type ServeFlags } from './args.ts'
import { startDev, type DevFlags } from './dev.ts'
import { runNew } from './new.ts'
import { MAIN_HELP } from './help.ts'
import { loadConfig, prettyLogs, reopenLogsOnSigusr1, startServer, stopOnSignals } from './serve.ts'
import { runPrimary } from '../cluster/primary.ts'
import { serveAsWorker, workerHooks } from '../cluster/worker.ts'
import { createLogger } from '../server/logger.ts'
import { handleFaults } from '../server/faults.ts'
import { reloadOnSighup } from '../watch/reload-all.ts'
import { startUwsgiWorker, uwsgiWorkerOptions, type UwsgiWorkerFlags } from './uwsgi-worker.ts'
import { fcgiWorkerOptions, startFcgiWorker, type FcgiWorkerFlags } from './fcgi-worker.ts'

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** The `resident` command. Returns nothing once a server is up; exits the process on errors. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(MAIN_HELP)
      if (command === undefined) process.exitCode = 2
      return
    }
    if (command === '--version' || command === '-v') {
      process.stdout.write(`${version()}\n`)
      return
    }
    if (command === 'serve') {
      const values = parseFlags(rest, serveOnlyOptions)
      if (values.help) { process.stdout.write(MAIN_HELP); return }
      for (const flag of ['extensions', 'filters'] as const) {
        const dir = values[flag]
        if (typeof dir === 'string' && dir !== '' && !existsSync(path.resolve(dir))) throw new UsageError(`--${flag} ${dir}: no such folder (${path.resolve(dir)})`)
      }
      const start = { flags: values as ServeFlags, env: process.env, cwd: process.cwd(), development: process.env.NODE_ENV === 'development' }
      const config = loadConfig(start)
      if (config.workers > 0 && cluster.isPrimary) {
        runPrimary(config, createLogger(config, prettyLogs(start.development)))
        return
      }
      const worker = cluster.isWorker
      const { server, url } = await startServer({ ...start, config, serverOptions: worker ? workerHooks() : undefined })
      handleFaults(server)
      const stop = stopOnSignals(server)
      reopenLogsOnSigusr1(server)
      if (worker) serveAsWorker(server, url, stop)
      else reloadOnSighup(server.registry, server.log, [server.filters])
      return
    }
    if (command === 'dev') {
      const values = parseFlags(rest, devOptions) as DevFlags
      if (values.help) { process.stdout.write(MAIN_HELP); return }
      const quiet = values.quiet === undefined ? 25 : parseDuration(values.quiet)
      if (quiet === undefined || quiet > 10_000) throw new UsageError(`--quiet must be a duration up to 10s, such as 25 or "25ms", got "${values.quiet}"`)
      for (const flag of ['extensions', 'filters'] as const) {
        const dir = values[flag]
        if (typeof dir === 'string' && dir !== '' && !existsSync(path.resolve(dir))) {
          process.stderr.write(`resident: warning: --${flag} ${dir}: no such folder (${path.resolve(dir)}) yet; watching for it\n`)
        }
      }
      await startDev(values, quiet)
      return
    }
    if (command === 'uwsgi-worker') {
      const values = parseFlags(rest, uwsgiWorkerOptions) as UwsgiWorkerFlags
      if (values.help) { process.stdout.write(MAIN_HELP); return }
      await startUwsgiWorker(values)
      return
    }
    if (command === 'bench') {
      // Loaded only for this command: the load generator is not needed to serve.
      await (await import('./bench.ts')).bench(rest)
      // The load generator leaves per-request timers behind for answers still due when a round
      // ends (a CGI target under load); the report is out, so nothing is left to wait for.
      process.exit(process.exitCode ?? 0)
    }
    if (command === 'new') {
      const { values, positionals } = parseNewArgs(rest)
      if (values.help) { process.stdout.write(MAIN_HELP); return }
      process.stdout.write(runNew(positionals, { sdk: values.sdk, cwd: process.cwd() }))
      return
    }
    if (command === 'cgi') {
      await (await import('./cgi.ts')).main(rest)
      return
    }
    if (command === 'fcgi-worker') {
      const values = parseFlags(rest, fcgiWorkerOptions) as FcgiWorkerFlags
      if (values.help) { process.stdout.write(MAIN_HELP); return }
      await startFcgiWorker(values)
      return
    }
    throw new UsageError(`unknown command "${command}"`)
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`resident: ${e.message}\nRun "resident --help" for usage.\n`)
      process.exit(2)
    }
    if (isResidentError(e) && e.code === 'RES_ERR_CONFIG') {
      process.stderr.write(`resident: ${e.message}\n`)
      process.exit(2)
    }
    if (isResidentError(e) && e.code === 'RES_ERR_FILTER_LOAD_FAILED') {
      process.stderr.write(`resident: ${e.message}\n`)
      process.exit(1)
    }
    const err = e as NodeJS.ErrnoException
    if (err?.code === 'EADDRINUSE' || err?.code === 'EACCES' || err?.code === 'EADDRNOTAVAIL') {
      process.stderr.write(`resident: cannot listen: ${err.message}\n`)
      process.exit(1)
    }
    process.stderr.write(`resident: ${err?.stack ?? String(e)}\n`)
    process.exit(1)
  }
}
