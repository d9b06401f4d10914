// A uwsgi responder, for nginx's uwsgi_pass: one request per connection (nginx never reuses a
// uwsgi connection), the vars block turned back into the HTTP request nginx received, and the
// answer written as the plain HTTP/1.x response nginx parses.
import type { RequestListener } from 'node:http'
import net from 'node:net'
import type { Logger as PinoLogger } from 'pino'
import { dispatchGateway, onBodyResume, type GatewayExchange } from '../gateway/bridge.ts'
import { requestFromEnv } from '../gateway/env.ts'
import { listenOn, type ListenAddress } from '../fastcgi/listen.ts'
import { UWSGI_MAX_VARS, UWSGI_MODIFIER_VARS, UwsgiHeadReader } from './codec.ts'

export interface UwsgiServerOptions {
  listener: RequestListener
  log: PinoLogger
  /** Where to listen; null = the listening socket inherited on fd 0. */
  address: ListenAddress | null
  /** Called when a request ends (recycling after N requests). */
  onRequestEnd?: () => void
}

export interface UwsgiServer {
  address: string
  /** Stops accepting; resolves once every connection has closed. */
  close(): Promise<void>
}

// nginx reads the status line and headers as HTTP; the body ends with the connection.
const keepHttpHead = (head: string) => head

function serveConnection(socket: net.Socket, o: UwsgiServerOptions): void {
  const reader = new UwsgiHeadReader(UWSGI_MAX_VARS)
  let exchange: GatewayExchange | null = null
  let remaining = 0
  let finished = false
  const feed = (chunk: Buffer) => {
    if (exchange === null || remaining <= 0 || chunk.length === 0) return
    const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk
    remaining -= part.length
    if (!exchange.body(part)) socket.pause()
    if (remaining === 0) exchange.endBody()
  }
  socket.on('data', (chunk: Buffer) => {
    if (exchange !== null) { feed(chunk); return }
    let got
    try {
      got = reader.push(chunk)
    } catch (e) {
      o.log.warn({ err: e }, `uwsgi protocol error: ${(e as Error).message}; connection closed`)
      socket.destroy()
      return
    }
    if (!got) return
    if (got.head.modifier1 !== UWSGI_MODIFIER_VARS) {
      o.log.warn(`uwsgi request with modifier1 ${got.head.modifier1} refused: only vars requests (modifier1 0) are served`)
      socket.destroy()
      return
    }
    const head = requestFromEnv(got.head.vars)
    const length = Number(got.head.vars.get('CONTENT_LENGTH') ?? 0)
    remaining = Number.isSafeInteger(length) && length > 0 ? length : 0
    exchange = dispatchGateway(o.listener, head, {
      write: (chunks, done) => {
        let ok = true
        for (const c of chunks) ok = socket.write(c)
        if (ok) done()
        else socket.once('drain', done)
      },
      end: () => {
        finished = true
        socket.end()
        o.onRequestEnd?.()
      },
      // The app gave up part-way: a reset, so nginx reports an incomplete answer.
      abort: () => {
        finished = true
        socket.destroy()
        o.onRequestEnd?.()
      },
    }, { translateHead: keepHttpHead })
    onBodyResume(exchange, () => socket.resume())
    if (remaining === 0) exchange.endBody()
    else feed(got.rest)
  })
  socket.on('error', () => {})
  socket.on('close', () => { if (!finished) exchange?.abort() })
}

export async function startUwsgiServer(o: UwsgiServerOptions): Promise<UwsgiServer> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    serveConnection(socket, o)
  })
  const address = await listenOn(server, o.address ?? { kind: 'fd', fd: 0 })
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      // Each connection carries one request and closes when it is answered.
      server.close(() => resolve())
    }),
  }
}

