// The messages between the host and a worker running one generation of one extension. Plain data
// (structured clone); byte bodies and chunks travel as transferred ArrayBuffers. Every call carries
// a sequence number of the worker's own, so a cancel, a credit or a crash reaches exactly the calls
// it concerns, whatever request ids the clients sent.
import type { SourceMapPayload } from '../../loader/build.ts'
import type { FunctionShape } from '../../loader/module-shape.ts'
import type { CommandTable } from '../commands.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import type { ErrorRecord, Outcome, OutcomeHeaders } from '../outcome.ts'

/** What the worker needs to run its generation: the host builds, the worker evaluates. */
export interface WorkerInit {
  name: string
  entry: string
  generation: number
  config: Record<string, unknown>
  development: boolean
  /** The bundle as the loader shaped it (plain strings). */
  shape: FunctionShape
  map: SourceMapPayload
  inputs: string[]
  /** The pino level of the host's logger: the worker forwards only lines it would write. */
  level: string
  /** Float64Array(3) the worker keeps up to date: heapUsed, heapTotal, external. */
  stats: SharedArrayBuffer
}

export type LifecycleOp = 'canUnload' | 'exportState' | 'importState' | 'dispose'

export type ToWorker =
  | { t: 'invoke'; seq: number; inv: Invocation }
  | { t: 'cancel'; seq: number; reason: CancelReason }
  | { t: 'credit'; seq: number; n: number }
  | { t: 'call'; seq: number; op: LifecycleOp; arg?: unknown }

/** A whole outcome as it crosses: a streamed one is sent as head, chunks and end instead. */
export type WireOutcome = Exclude<Outcome, { kind: 'stream' }>

export type FromWorker =
  | { t: 'ready'; table: CommandTable; hooks: { exportState: boolean; importState: boolean } }
  | { t: 'failed'; message: string; stack?: string }
  | { t: 'outcome'; seq: number; outcome: WireOutcome }
  | { t: 'head'; seq: number; status: number; headers: OutcomeHeaders }
  | { t: 'chunk'; seq: number; bytes: Uint8Array }
  | { t: 'end'; seq: number }
  | { t: 'abort'; seq: number; error: ErrorRecord }
  | { t: 'alive'; seq: number }
  | { t: 'reply'; seq: number; ok: true; value: unknown }
  | { t: 'reply'; seq: number; ok: false; message: string; stack?: string }
  | { t: 'log'; level: string; bindings: Record<string, unknown>; obj: unknown; msg?: string }

/** Chunks the host lets a worker send ahead of what the response has taken. */
export const CREDIT_WINDOW = 8

/** The stats array's slots. */
export const STAT_HEAP_USED = 0
export const STAT_HEAP_TOTAL = 1
export const STAT_EXTERNAL = 2
