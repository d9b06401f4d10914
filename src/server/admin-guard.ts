import crypto from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { ResidentError } from '../errors.ts'

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/

export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.test(address)
}

/** The header a state-changing admin call must carry when no token is configured (a form cannot set it). */
export const ADMIN_HEADER = 'x-resident-admin'

const BEARER = /^bearer +(\S+) *$/i

const digest = (s: string) => crypto.createHash('sha256').update(s).digest()

/**
 * Compares fixed-length digests, so the time taken says nothing of the token's length or of how
 * much of it matched.
 */
function tokenMatches(given: string, expected: string): boolean {
  return crypto.timingSafeEqual(digest(given), digest(expected))
}

const LOOPBACK_NAME = /^(localhost|[a-z0-9.-]+\.localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/
const WILDCARD = new Set(['0.0.0.0', '::', '[::]'])

export interface AdminPolicy {
  token: string | null
  /** Extra `Host` names (no port) the admin surface answers, besides the loopback names and the listen address. */
  hosts: readonly string[]
  /** The address the server listens on (`host`); a specific one is an accepted Host name too. */
  listenHost: string
}

/** The host part of a `Host` header (or of an origin's authority), lower-cased, without the port. */
function hostName(authority: string): string {
  const a = authority.trim().toLowerCase()
  if (a.startsWith('[')) {
    const end = a.indexOf(']')
    return end === -1 ? a : a.slice(0, end + 1)
  }
  const colon = a.indexOf(':')
  return colon === -1 ? a : a.slice(0, colon)
}

function allowedHost(name: string, policy: AdminPolicy): boolean {
  if (LOOPBACK_NAME.test(name)) return true
  const listen = policy.listenHost.toLowerCase()
  if (!WILDCARD.has(listen) && (name === listen || name === `[${listen}]`)) return true
  return policy.hosts.includes(name)
}

const forbidden = (message: string) => new ResidentError('RES_ERR_ADMIN_FORBIDDEN', message)

/**
 * Who may use the admin surface, checked in this order:
 * - the caller: loopback by socket address (never X-Forwarded-For) or, with `admin.token` set,
 *   only a request bearing `Authorization: Bearer <token>` (loopback included);
 * - the `Host`: a loopback name, the listen address or one of `admin.hosts`, so a DNS-rebound
 *   name (attacker.example → 127.0.0.1) gets nothing;
 * - a browser's `Origin` (and `Sec-Fetch-Site`): same origin only, so another site's page cannot
 *   read or drive it;
 * - a state-changing call (anything but GET/HEAD): the token, or the `X-Resident-Admin` header,
 *   which no cross-site form or simple request can carry.
 */
export function checkAdmin(request: FastifyRequest, policy: AdminPolicy): void {
  const { headers } = request
  const token = policy.token
  if (token !== null) {
    const header = headers.authorization ?? ''
    // The scheme is case-insensitive (RFC 9110 §11.1), as curl and proxies may spell it.
    const given = BEARER.exec(header)?.[1] ?? ''
    if (given === '' || !tokenMatches(given, token)) throw forbidden('the admin surface needs "Authorization: Bearer <admin.token>"')
  } else if (!isLoopback(request.socket.remoteAddress)) {
    throw forbidden('the admin surface answers loopback callers only; configure admin.token to open it to others')
  }
  const host = typeof headers.host === 'string' ? hostName(headers.host) : ''
  if (!allowedHost(host, policy)) {
    throw forbidden(`the admin surface answers for a loopback Host, the listen address or one in admin.hosts, not ${JSON.stringify(host.slice(0, 100))}`)
  }
  const origin = headers.origin
  if (origin !== undefined) {
    const m = /^https?:\/\/([^/]+)$/i.exec(origin)
    if (m === null || m[1]!.toLowerCase() !== String(headers.host).toLowerCase()) {
      throw forbidden('the admin surface refuses cross-origin requests')
    }
  }
  if (headers['sec-fetch-site'] === 'cross-site' || headers['sec-fetch-site'] === 'same-site') {
    throw forbidden('the admin surface refuses cross-origin requests')
  }
  if (token === null && request.method !== 'GET' && request.method !== 'HEAD' && !headers[ADMIN_HEADER]) {
    throw forbidden(`a state-changing admin call needs the "${ADMIN_HEADER}: 1" header (or admin.token)`)
  }
}
