import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/**
 * The server's open sockets, so that a graceful stop can close every connection with no response
 * in progress — including ones that never sent a request, which Node's closeIdleConnections()
 * leaves open (a client that opened a spare connection would otherwise hold the stop until
 * drainTimeout).
 */
export class Connections {
  readonly #sockets = new Set<Socket>()

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
  }

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
