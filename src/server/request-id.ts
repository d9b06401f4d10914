import { randomBytes } from 'node:crypto'
import { isValidRequestId } from '../sdk/request-id.ts'

// Short, unique and cheap: a per-process prefix and a counter (no per-request randomness).
const prefix = randomBytes(4).toString('hex')
let counter = 0

export function nextRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER
  return `${prefix}-${counter.toString(36)}`
}

/**
 * fastify's genReqId: the caller's id from `header` when it is valid, else Resident's own. With a
 * header configured, error bodies, logs, filters and commands all see the id the caller sent.
 */
export function requestIdGenerator(header: string | null): (req: { headers: Record<string, string | string[] | undefined> }) => string {
  if (header === null) return nextRequestId
  return (req) => {
    const v = req.headers[header]
    return isValidRequestId(v) ? v : nextRequestId()
  }
}
