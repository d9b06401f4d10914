import { fstatSync } from 'node:fs'
import type { RequestListener } from 'node:http'
import net from 'node:net'
import type { Logger as PinoLogger } from 'pino'
import { allowedPeers, listenOn, type ListenAddress } from './listen.ts'
import { ResponderConnection, type ResponderOptions } from './responder.ts'

export interface FcgiServerOptions {
  listener: RequestListener
  log: PinoLogger
  /** Where to listen; null = the listening socket inherited on fd 0. */
  address: ListenAddress | null
  /** FCGI_WEB_SERVER_ADDRS, when set. */
  webServerAddrs?: string
  maxConns?: number
  onRequest?: ResponderOptions['onRequest']
}

export interface FcgiServer {
  server: net.Server
  /** Where it listens, as `unix:/path`, `host:port` or `fd:0`. */
  address: string
  /** Open connections (each carries at most one request at a time). */
  connections: Set<ResponderConnection>
  /** Stops accepting; resolves once every connection has closed. */
  close(): Promise<void>
}

/** True when fd 0 is a socket (spawn-fcgi, cgi-fcgi -start, lighttpd and php-fpm-style managers hand one over). */
export function stdinIsSocket(): boolean {
  try { return fstatSync(0).isSocket() } catch { return false }
}

/** A FastCGI responder server: every connection answered by `listener`, one request at a time. */
export async function startFcgiServer(o: FcgiServerOptions): Promise<FcgiServer> {
  const allowed = allowedPeers(o.webServerAddrs)
  const connections = new Set<ResponderConnection>()
  const options: ResponderOptions = {
    maxConns: o.maxConns ?? 1024,
    maxParams: 1024 * 1024,
    onProtocolError: (e, socket) => o.log.warn({ err: e, peer: socket.remoteAddress ?? 'unix' }, `FastCGI protocol error: ${e.message}; connection closed`),
    onRequest: o.onRequest,
  }
  const server = net.createServer((socket) => {
    if (allowed !== null && !allowed(socket)) {
      o.log.warn(`FastCGI connection from ${socket.remoteAddress ?? 'a unix socket'} refused: not in FCGI_WEB_SERVER_ADDRS`)
      socket.destroy()
      return
    }
    const c = new ResponderConnection(socket, o.listener, options)
    connections.add(c)
    socket.once('close', () => connections.delete(c))
  })
  server.maxConnections = options.maxConns
  const address = await listenOn(server, o.address ?? { kind: 'fd', fd: 0 })
  return {
    server,
    address,
    connections,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      // Kept-alive connections would hold the close open: each closes once its request is done.
      for (const c of connections) c.closeWhenIdle()
    }),
  }
}
