import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'

/**
 * The server's open sockets, so that a graceful stop can close every connection with no response
 * in progress — including ones that never sent a request, which Node's closeIdleConnections()
 * leaves open (a client that opened a spare connection would otherwise hold the stop until
 * drainTimeout). Also the connection limit: past `maxConnections`, Node closes a new socket as it
 * is accepted, before any parser or request exists for it (the cheapest refusal there is), and a
 * warning says so at most once a second.
 */
export class Connections {
  readonly #sockets = new Set<Socket>()
  #dropped = 0
  #warned = 0

  constructor(server: Server, maxConnections: number, log: Logger) {
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    if (maxConnections > 0) {
      server.maxConnections = maxConnections
      server.on('drop', () => {
        this.#dropped++
        const now = Date.now()
        if (now - this.#warned < 1000) return
        this.#warned = now
        log.warn({ maxConnections, dropped: this.#dropped }, `refusing connections beyond maxConnections (${maxConnections}); ${this.#dropped} refused so far`)
      })
    }
  }

  /** Connections refused for being over the limit since the start. */
  get dropped(): number { return this.#dropped }

  /** Destroys every socket that is not carrying a response; returns how many remain busy. */
  closeIdle(): number {
    let busy = 0
    for (const socket of this.#sockets) {
      if ((socket as Socket & { _httpMessage?: unknown })._httpMessage) busy++
      else socket.destroy()
    }
    return busy
  }
}
