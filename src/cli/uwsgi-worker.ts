import { parseAddress } from '../modes/fastcgi/listen.ts'
import { stdinIsSocket } from '../modes/fastcgi/worker-server.ts'
import { startUwsgiServer } from '../modes/uwsgi/responder.ts'
import { runResponder } from './responder-process.ts'
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
 * inherited on fd 0; logs on stderr; the same fault policy and signals (SIGTERM, SIGINT, SIGQUIT
 * drain; SIGHUP reloads).
 */
export async function startUwsgiWorker(flags: UwsgiWorkerFlags): Promise<void> {
  const address = flags.listen === undefined ? null : parseAddress(flags.listen)
  if (address === null && !stdinIsSocket()) {
    throw new UsageError('uwsgi-worker needs --listen unix:/path or host:port, or a listening socket on fd 0')
  }
  const serveFlags: ServeFlags = { config: flags.config, extensions: flags.extensions, filters: flags.filters }
  await runResponder({
    protocol: 'uwsgi',
    command: 'uwsgi-worker',
    flags: serveFlags,
    start: (resident, log) => startUwsgiServer({ listener: (req, res) => resident.app.routing(req, res), log, address }),
  })
}
