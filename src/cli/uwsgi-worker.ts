import pino from 'pino'
import { buildServer } from '../server/app.ts'
import { parseAddress } from '../modes/fastcgi/listen.ts'
import { stdinIsSocket } from '../modes/fastcgi/worker-server.ts'
import { startUwsgiServer } from '../modes/uwsgi/responder.ts'
import { loadConfig } from './serve.ts'
import { UsageError, type ServeFlags } from './args.ts'

export const uwsgiWorkerOptions = {
  listen: { type: 'string', short: 'l' },
  config: { type: 'string', short: 'c' },
  extensions: { type: 'string', short: 'e' },
  filters: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const

export interface UwsgiWorkerFlags { listen?: string; config?: string; extensions?: string; filters?: string; help?: boolean }

/**
 * `resident uwsgi-worker`: Resident's extensions and filters behind a uwsgi responder, for nginx's
 * uwsgi_pass. It mirrors fcgi-worker: --listen unix:/path or host:port, or the listening socket
 * inherited on fd 0; logs on stderr.
 */
export async function startUwsgiWorker(flags: UwsgiWorkerFlags): Promise<void> {
  const address = flags.listen === undefined ? null : parseAddress(flags.listen)
  if (address === null && !stdinIsSocket()) {
    throw new UsageError('uwsgi-worker needs --listen unix:/path or host:port, or a listening socket on fd 0')
  }
  const serveFlags: ServeFlags = { config: flags.config, extensions: flags.extensions, filters: flags.filters }
  const config = loadConfig({ flags: serveFlags, env: process.env, cwd: process.cwd(), development: process.env.NODE_ENV === 'development' })
  const log = pino({ level: config.logLevel }, pino.destination(2))
  const resident = await buildServer(config, { logger: log })
  const uwsgi = await startUwsgiServer({ listener: (req, res) => resident.app.routing(req, res), log, address })
  let stopping = false
  const stop = (why: string) => {
    if (stopping) process.exit(1)
    stopping = true
    log.info(`${why}: finishing in-flight uwsgi requests`)
    setTimeout(() => { log.warn('requests still running at the drain timeout; exiting'); process.exit(1) }, config.drainTimeout).unref()
    void uwsgi.close().then(() => resident.close()).then(() => process.exit(0), () => process.exit(1))
  }
  log.info({ address: uwsgi.address }, `Resident uwsgi-worker listening on ${uwsgi.address}`)
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection (kept running)'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}
