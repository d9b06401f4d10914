import { randomBytes } from 'node:crypto'

// Short, unique and cheap: a per-process prefix and a counter (no per-request randomness).
const prefix = randomBytes(4).toString('hex')
let counter = 0

export function nextRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER
  return `${prefix}-${counter.toString(36)}`
}
