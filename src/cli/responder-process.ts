// What `resident fcgi-worker` and `resident uwsgi-worker` share: a Resident (extensions and
// filters, no HTTP listener) behind a gateway protocol's responder, logging to stderr (stdout is
// /dev/null under spawn-fcgi), with the host's fault policy and the signals a process manager sends.
import pino, { type Logger } from 'pino'
import { buildServer, type ResidentServer } from '../server/app.ts'
import { handleFaults } from '../server/faults.ts'
import { reloadOnSighup } from '../watch/reload-all.ts'
import { loadConfig } from './serve.ts'
import type { ServeFlags } from './args.ts'

export interface ResponderServer { address: string; close(): Promise<void> }

export interface ResponderOptions {
  /** The protocol's name, for the log: "FastCGI", "uwsgi". */
  protocol: string
  /** The command's name, for the log: "fcgi-worker". */
  command: string
  flags: ServeFlags
  /** Starts the responder; `stop` ends the process gracefully (code 0: a planned recycle). */
  start(resident: ResidentServer, log: Logger, stop: (why: string, code?: number) => void): Promise<ResponderServer>
}

export async function runResponder(o: ResponderOptions): Promise<void> {
  const config = loadConfig({ flags: o.flags, env: process.env, cwd: process.cwd(), development: process.env.NODE_ENV === 'development' })
  const log = pino({ level: config.logLevel }, pino.destination(2))
  const resident = await buildServer(config, { logger: log })
  let server: ResponderServer | null = null
  let stopping = false
  const stop = (why: string, code = 0) => {
    // A second signal while draining means "now"; a second recycle request is just late.
    if (stopping) { if (why !== 'recycle') process.exit(1); return }
    stopping = true
    log.info(`${why}: finishing in-flight ${o.protocol} requests`)
    setTimeout(() => { log.warn('requests still running at the drain timeout; exiting'); process.exit(1) }, config.drainTimeout).unref()
    void Promise.resolve(server?.close()).then(() => resident.close()).then(() => process.exit(code), () => process.exit(1))
  }
  server = await o.start(resident, log, stop)
  log.info({ address: server.address }, `Resident ${o.command} listening on ${server.address}`)
  // The host's fault policy (server/faults.ts): traced faults retire a generation; any other one
  // drains and exits 1, and the web server's next upstream (or the process manager) takes over.
  handleFaults(resident)
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // PHP-FPM's children stop gracefully on SIGQUIT; so do these.
  process.on('SIGQUIT', () => stop('SIGQUIT'))
  // As resident serve: SIGHUP reloads every extension and filter without a failed request.
  reloadOnSighup(resident.registry, log, [resident.filters])
}
