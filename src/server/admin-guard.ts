import crypto from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { ResidentError } from '../errors.ts'

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/

export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.test(address)
}

const digest = (s: string) => crypto.createHash('sha256').update(s).digest()

/**
 * Compares fixed-length digests, so the time taken says nothing of the token's length or of how
 * much of it matched.
 */
function tokenMatches(given: string, expected: string): boolean {
  return crypto.timingSafeEqual(digest(given), digest(expected))
}

/**
 * The admin surface answers loopback callers; with a token configured, it answers anyone who
 * presents `Authorization: Bearer <token>` and nobody else (loopback included).
 * Uses the socket's address, never X-Forwarded-For.
 */
export function checkAdmin(request: FastifyRequest, token: string | null): void {
  if (token !== null) {
    const header = request.headers.authorization ?? ''
    const given = header.startsWith('Bearer ') ? header.slice(7) : ''
    if (given !== '' && tokenMatches(given, token)) return
    throw new ResidentError('RES_ERR_ADMIN_FORBIDDEN', 'the admin surface needs "Authorization: Bearer <admin.token>"')
  }
  if (!isLoopback(request.socket.remoteAddress)) {
    throw new ResidentError('RES_ERR_ADMIN_FORBIDDEN', 'the admin surface answers loopback callers only; configure admin.token to open it to others')
  }
}
