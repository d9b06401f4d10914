import { statSync, unlinkSync } from 'node:fs'
import net from 'node:net'
import { ResidentError } from '../../errors.ts'

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } | { kind: 'fd'; fd: number }

/**
 * `unix:/path`, `host:port`, `[v6]:port`, or `:port` (all interfaces). Used by fcgi-worker's
 * --listen and by the client's `address`.
 */
export function parseAddress(text: string): ListenAddress {
  if (text.startsWith('unix:')) {
    const p = text.slice(5)
    if (p === '') throw new ResidentError('RES_ERR_CONFIG', `"${text}" names no socket path`)
    return { kind: 'unix', path: p }
  }
  if (text.startsWith('/')) return { kind: 'unix', path: text }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text)
  if (!m || Number(m[3]) > 65535) throw new ResidentError('RES_ERR_CONFIG', `"${text}" is not an address: use unix:/path/to.sock or host:port`)
  return { kind: 'tcp', host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) }
}

export function formatAddress(a: ListenAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`
  if (a.kind === 'fd') return `fd:${a.fd}`
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/**
 * Listens on an address. A stale unix socket file (nothing accepting) is removed first, as
 * spawn-fcgi does; a live one is an error. fd 0 must be an inherited listening socket: Node
 * answers EINVAL for anything else (a connected socket, a pipe), which is how a FastCGI start-up
 * is told from a CGI one.
 */
export async function listenOn(server: net.Server, a: ListenAddress): Promise<string> {
  if (a.kind === 'unix') await removeStaleSocket(a.path)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    const done = () => { server.off('error', reject); resolve() }
    if (a.kind === 'unix') server.listen(a.path, done)
    else if (a.kind === 'fd') server.listen({ fd: a.fd }, done)
    else server.listen(a.port, a.host, done)
  })
  const addr = server.address()
  if (a.kind === 'fd') return typeof addr === 'string' ? `unix:${addr}` : addr ? formatAddress({ kind: 'tcp', host: addr.address, port: addr.port }) : 'fd:0'
  if (a.kind === 'unix') return `unix:${a.path}`
  return typeof addr === 'object' && addr ? formatAddress({ kind: 'tcp', host: addr.address, port: addr.port }) : formatAddress(a)
}

async function removeStaleSocket(p: string): Promise<void> {
  let isSocket = false
  try { isSocket = statSync(p).isSocket() } catch { return }
  if (!isSocket) throw Object.assign(new Error(`${p} exists and is not a socket`), { code: 'EADDRINUSE' })
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(p)
    c.once('connect', () => { c.destroy(); resolve(true) })
    c.once('error', () => resolve(false))
  })
  if (live) throw Object.assign(new Error(`${p} is in use by a running server`), { code: 'EADDRINUSE' })
  unlinkSync(p)
}

/**
 * FCGI_WEB_SERVER_ADDRS: the IPv4 (or IPv6) addresses of web servers allowed to connect. As the
 * spec says (§3.2), a connection that did not come over TCP/IP fails the check too, so a unix
 * socket peer is refused while the variable is set (PHP lets those through; set the variable only
 * for TCP listeners). Returns null when every peer is allowed.
 */
export function allowedPeers(value: string | undefined): ((socket: net.Socket) => boolean) | null {
  if (value === undefined || value.trim() === '') return null
  const list = new Set(value.split(',').map((s) => s.trim()).filter(Boolean))
  return (socket) => {
    const addr = socket.remoteAddress
    if (addr === undefined) return false
    return list.has(addr) || (addr.startsWith('::ffff:') && list.has(addr.slice(7)))
  }
}
