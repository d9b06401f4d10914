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
export function requestIdGenerator(header: string | null): (req: IdentifiedRequest) => string {
  if (header === null) {
    return (req) => (req[REQUEST_ID] = nextRequestId())
  }
  return (req) => {
    const v = req.headers[header]
    return (req[REQUEST_ID] = isValidRequestId(v) ? v : nextRequestId())
  }
}

// The id is also kept on Node's request, so that a response Node's HTTP layer must cut short (a
// body that stopped arriving: 408) carries the id the request is logged under.
const REQUEST_ID = Symbol('resident.requestId')
interface IdentifiedRequest { headers: Record<string, string | string[] | undefined>; [REQUEST_ID]?: string }

/** The id Resident gave a request that reached it, if it did. */
export function requestIdOf(req: object): string | undefined {
  return (req as IdentifiedRequest)[REQUEST_ID]
}
