import pino from 'pino'
import { buildServer } from '../server/app.ts'
import { handleFaults } from '../server/faults.ts'
import { parseAddress } from '../modes/fastcgi/listen.ts'
import { startFcgiServer, stdinIsSocket } from '../modes/fastcgi/worker-server.ts'
import { loadConfig } from './serve.ts'
import { GATEWAY_ENV } from '../modes/gateway/bridge.ts'
import { DESCRIBE_PARAM } from '../modes/fastcgi/managed.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { UsageError, type ServeFlags } from './args.ts'
import { reloadOnSighup } from '../watch/reload-all.ts'

export const fcgiWorkerOptions = {
  listen: { type: 'string', short: 'l' },
  config: { type: 'string', short: 'c' },
  extensions: { type: 'string', short: 'e' },
  filters: { type: 'string', short: 'f' },
  'max-requests': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export interface FcgiWorkerFlags { listen?: string; config?: string; extensions?: string; filters?: string; 'max-requests'?: string; help?: boolean }

/**
 * `resident fcgi-worker`: Resident's extensions and filters behind a FastCGI responder. It listens
 * where --listen says, or on the socket it inherits on fd 0 (spawn-fcgi, cgi-fcgi -start, the
 * fastcgi mode's process manager). Logs go to stderr: stdout is /dev/null under spawn-fcgi.
 */
export async function startFcgiWorker(flags: FcgiWorkerFlags): Promise<void> {
  const address = flags.listen === undefined ? null : parseAddress(flags.listen)
  if (address === null && !stdinIsSocket()) {
    throw new UsageError('fcgi-worker needs --listen unix:/path or host:port, or a listening socket on fd 0 (as spawn-fcgi hands it over)')
  }
  let maxRequests = 0
  if (flags['max-requests'] !== undefined) {
    if (!/^\d+$/.test(flags['max-requests'])) throw new UsageError(`--max-requests must be a whole number, got "${flags['max-requests']}"`)
    maxRequests = Number(flags['max-requests'])
  }
  const serveFlags: ServeFlags = { config: flags.config, extensions: flags.extensions, filters: flags.filters }
  const config = loadConfig({ flags: serveFlags, env: process.env, cwd: process.cwd(), development: process.env.NODE_ENV === 'development' })
  const log = pino({ level: config.logLevel }, pino.destination(2))
  const resident = await buildServer(config, { logger: log })
  /** An extension's command table and watch set, loading it if need be: what the fastcgi mode's executor needs. */
  const describe = async (name: string, res: ServerResponse<IncomingMessage>): Promise<void> => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
      res.end(JSON.stringify(body))
    }
    try {
      const gen = await resident.registry.acquire(name)
      if (gen === null) { reply(404, { error: { message: `no extension named "${name}"` } }); return }
      try { reply(200, { table: gen.module.table, inputs: gen.module.inputs }) } finally { resident.registry.release(gen) }
    } catch (e) {
      reply(500, { error: { message: (e as Error).message } })
    }
  }
  let served = 0
  let stopping = false
  const stop = (why: string, code = 0) => {
    if (stopping) { if (why !== 'recycle') process.exit(1); return }
    stopping = true
    log.info(`${why}: finishing in-flight FastCGI requests`)
    const forced = setTimeout(() => { log.warn('requests still running at the drain timeout; exiting'); process.exit(1) }, config.drainTimeout)
    forced.unref()
    void fcgi.close().then(() => resident.close()).then(() => process.exit(code), () => process.exit(1))
  }
  const fcgi = await startFcgiServer({
    listener: (req, res) => {
      // The fastcgi mode's executor asks for the table with a FastCGI parameter of its own.
      const name = (req as unknown as Record<symbol, Map<string, string> | undefined>)[GATEWAY_ENV]?.get(DESCRIBE_PARAM)
      if (name !== undefined) { void describe(name, res); return }
      resident.app.routing(req, res)
    },
    log,
    address,
    webServerAddrs: process.env.FCGI_WEB_SERVER_ADDRS,
    onRequest: (event) => {
      // After max-requests the worker exits 0 (a planned recycle), as php-cgi's PHP_FCGI_MAX_REQUESTS does.
      if (event === 'end' && maxRequests > 0 && ++served >= maxRequests) stop('recycle')
    },
  })
  log.info({ address: fcgi.address }, `Resident fcgi-worker listening on ${fcgi.address}`)
  // The host's fault policy (server/faults.ts): traced faults retire a generation; any other one
  // drains and exits 1, and the web server's next upstream (or the process manager) takes over.
  handleFaults(resident)
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // PHP-FPM's children stop gracefully on SIGQUIT; so does this one.
  process.on('SIGQUIT', () => stop('SIGQUIT'))
  // As resident serve: SIGHUP reloads every extension and filter without a failed request.
  reloadOnSighup(resident.registry, log, [resident.filters])
}
