import { parseAddress } from '../modes/fastcgi/listen.ts'
import { startFcgiServer, stdinIsSocket } from '../modes/fastcgi/worker-server.ts'
import { runResponder } from './responder-process.ts'
import { GATEWAY_ENV } from '../modes/gateway/bridge.ts'
import { CAN_UNLOAD_PARAM, DESCRIBE_PARAM, GENERATION_ENV, REASON_PARAM, UNLOAD_PARAM } from '../modes/fastcgi/managed.ts'
import type { UnloadReason } from '../sdk/types.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { UsageError, type ServeFlags } from './args.ts'

const UNLOAD_REASONS = new Set<string>(['idle', 'memory', 'reload', 'admin', 'shutdown', 'removed', 'fault'])

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
      // Managed by the fastcgi mode: the generation is the host's, and so is its number.
      const generation = Number(process.env[GENERATION_ENV])
      if (Number.isInteger(generation) && generation > 0) resident.registry.numberFrom(generation)
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
      /**
       * The host's unload of a generation this worker runs: dispose(reason) with the host's reason,
       * or canUnload(reason) asked of this worker's instance (true when it has none loaded).
       */
      const manage = async (op: 'unload' | 'canUnload', name: string, reason: string | undefined, res: ServerResponse<IncomingMessage>): Promise<void> => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
        if (reason === undefined || !UNLOAD_REASONS.has(reason)) { res.end(JSON.stringify({ error: { message: `${REASON_PARAM} must be one of ${[...UNLOAD_REASONS].join(', ')}` } })); return }
        try {
          if (op === 'unload') { res.end(JSON.stringify({ unloaded: await resident.registry.unload(name, reason as UnloadReason) })); return }
          const gen = resident.registry.tryAcquire(name)
          if (gen === null) { res.end(JSON.stringify({ willing: true })); return }
          try { res.end(JSON.stringify({ willing: await gen.module.canUnload(reason as UnloadReason) })) } finally { resident.registry.release(gen) }
        } catch (e) {
          res.end(JSON.stringify({ error: { message: (e as Error).message } }))
        }
      }
      let served = 0
      return startFcgiServer({
        listener: (req, res) => {
          // The fastcgi mode's executor asks for the table with a FastCGI parameter of its own.
          const env = (req as unknown as Record<symbol, Map<string, string> | undefined>)[GATEWAY_ENV]
          const name = env?.get(DESCRIBE_PARAM)
          if (name !== undefined) { void describe(name, res); return }
          const unload = env?.get(UNLOAD_PARAM)
          if (unload !== undefined) { void manage('unload', unload, env!.get(REASON_PARAM), res); return }
          const ask = env?.get(CAN_UNLOAD_PARAM)
          if (ask !== undefined) { void manage('canUnload', ask, env!.get(REASON_PARAM), res); return }
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
