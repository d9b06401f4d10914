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
 *
 * And the send timeout: a client that asks and then stops reading leaves what the server wrote in
 * the server's memory (a whole body, every pipelined response queued behind it) and a streaming
 * command waiting on backpressure, for as long as the connection lives. A sweep closes a
 * connection whose pending output has not moved for `sendTimeout` (nginx's `send_timeout`):
 * progress is any byte the kernel took, seen as a shrinking libuv write queue or a finished write.
 * A connection with nothing to send is never judged by it (a long command is the deadline's business).
 */
export class Connections {
  readonly #sockets = new Set<Socket>()
  readonly #stalls = new WeakMap<Socket, Stall>()
  readonly #sweep: NodeJS.Timeout
  #dropped = 0
  #warned = 0

  constructor(server: Server, maxConnections: number, log: Logger, sendTimeout = 0) {
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    const every = Math.min(1000, Math.max(25, Math.floor(sendTimeout / 4)))
    this.#sweep = setInterval(() => this.#closeStalled(sendTimeout, log), every)
    this.#sweep.unref()
    if (sendTimeout <= 0) clearInterval(this.#sweep)
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

  #closeStalled(sendTimeout: number, log: Logger): void {
    const now = Date.now()
    for (const socket of this.#sockets) {
      const pending = socket.writableLength
      if (pending === 0 || socket.destroyed) { this.#stalls.delete(socket); continue }
      const queued = (socket as Socket & { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0
      const last = this.#stalls.get(socket)
      if (last === undefined || pending < last.pending || queued < last.queued) {
        this.#stalls.set(socket, { since: now, pending, queued })
        continue
      }
      // More may have been queued meanwhile (a stream writing on): only a decrease is progress.
      last.pending = pending
      last.queued = queued
      if (now - last.since < sendTimeout) continue
      this.#stalls.delete(socket)
      log.info({ remoteAddress: socket.remoteAddress, pendingBytes: pending, sendTimeout },
        `closed a connection whose client read none of its response for ${sendTimeout} ms (sendTimeout)`)
      socket.destroy()
    }
  }

  /** Stops the send-timeout sweep. */
  close(): void { clearInterval(this.#sweep) }

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

interface Stall { since: number; pending: number; queued: number }
