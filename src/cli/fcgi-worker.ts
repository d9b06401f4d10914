import { parseAddress } from '../modes/fastcgi/listen.ts'
import { startFcgiServer, stdinIsSocket } from '../modes/fastcgi/worker-server.ts'
import { runResponder } from './responder-process.ts'
import { GATEWAY_ENV } from '../modes/gateway/bridge.ts'
import { DESCRIBE_PARAM } from '../modes/fastcgi/managed.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { UsageError, type ServeFlags } from './args.ts'

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
  await runResponder({
    protocol: 'FastCGI',
    command: 'fcgi-worker',
    flags: serveFlags,
    async start(resident, log, stop) {
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
      return startFcgiServer({
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
    },
  })
}
