import type { Headers } from '../sdk/types.ts'

/**
 * One call of a command, as the host hands it to an executor: plain data only (no getters, no
 * class instances, no functions), so it survives `structuredClone`, a `MessagePort`, a pipe or a
 * socket unchanged. Every mode builds the command's `request` from it on its own side, adding
 * what cannot travel (`signal`, `log`).
 */
export interface Invocation {
  /** The request id: in every log line and error body, and what `cancel(id, …)` names. */
  id: string
  extension: string
  /** The command's method name, as the class writes it. */
  command: string
  method: string
  /** The URL as dispatched (after filters mapped it), its path and its parsed query. */
  url: string
  path: string
  query: Record<string, string | string[]>
  headers: Headers
  /** The parameters after the parse map validated and coerced them (the raw inputs without one). */
  params: Record<string, unknown>
  /** The parsed body: a JSON value, an object for a urlencoded form, a string for text, bytes otherwise. */
  body: unknown
  /** The body's bytes as received; empty when there was none. */
  rawBody: Uint8Array
  contentType: string | null
  clientAddress: string
  /** What a filter attached in onAuthenticate, as plain JSON (undefined when none did). */
  user: unknown
  /** Epoch ms after which the host answers 504 and cancels the call; 0 = no deadline. */
  deadline: number
}

/** Why the host cancels a call: the client went away, or the deadline passed (the client got a 504). */
export type CancelReason = 'client-gone' | 'timeout' | 'shutdown'
