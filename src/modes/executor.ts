import type { Logger as PinoLogger } from 'pino'
import type { Mode } from '../config/modes.ts'
import type { UnloadReason } from '../sdk/types.ts'
import type { CommandTable } from './commands.ts'
import type { CancelReason, Invocation } from './invocation.ts'
import type { Outcome } from './outcome.ts'
import type { ModeProcess } from './processes.ts'


/** What an executor needs to load one generation of one extension. */
export interface LoadSpec {
  name: string
  /** The entry file (absolute, inside the extensions folder). */
  entry: string
  generation: number
  /** `extensions.<name>.config`: the extension's `this.host.config`. */
  config: Record<string, unknown>
  /** The generation's logger (bound to extension and generation). */
  log: PinoLogger
  /** Development: an unexpected throw's message (not only its code) reaches the client. */
  development: boolean
}

/** Memory one generation holds, measured exactly (a worker's own isolate), in bytes. */
export interface ExactMemory {
  heapUsed: number
  heapTotal: number
  /** ArrayBuffers and Buffers the generation's isolate owns (not capped by the heap limit). */
  external: number
}

/**
 * One loaded generation of an extension, as its executor runs it: the executor's handle on it.
 * Lifecycle calls are async in every mode (they may cross a thread or a process).
 */
export interface LoadedModule {
  readonly mode: Mode
  readonly table: CommandTable
  /** Absolute paths of the files the build used: what a watcher must watch. */
  readonly inputs: readonly string[]
  /** An object collected when, and only when, the generation's code is (in process: the class); null elsewhere. */
  readonly sentinel: object | null
  /**
   * Runs a command. Returns its outcome, or a promise of it; never throws or rejects: failures
   * are error outcomes. In process, a synchronous command's outcome comes back synchronously.
   */
  invoke(invocation: Invocation): Outcome | Promise<Outcome>
  /**
   * The host gave up on a call (client gone, deadline passed): abort its `request.signal`, stop its
   * streamed body, and for a call that cannot be stopped (a worker spinning) do what it takes.
   * Unknown or finished ids are ignored.
   */
  cancel(id: string, reason: CancelReason): void
  /** The extension's answer to an advisory unload (true when it has no canUnload). */
  canUnload(reason: UnloadReason): Promise<boolean>
  /** Hot reload: the instance's exportState(), when it has one. */
  exportState?(): Promise<unknown>
  /** Hot reload: hands the previous generation's state to the instance's importState(), when it has one. */
  importState?(state: unknown): Promise<void>
  /** Runs the extension's dispose(), then releases everything the generation holds (timers, a worker…). */
  dispose(reason: UnloadReason): Promise<void>
  /** Exact memory, in modes that can measure it; absent in process (one shared heap: only an estimate). */
  memory?(): ExactMemory | null
  /**
   * In process: the heap + external bytes its evaluation and init() added, measured around them
   * alone (not around the build, where other loads run), and whether no other load and no GC ran
   * meanwhile (`clean`; `collected`: a GC did, so the reading is only a lower bound). An estimate;
   * absent in other modes.
   */
  readonly loadGrowth?: { bytes: number; clean: boolean; collected: boolean }
  /** Mode-specific figures for the status page (pool size, restarts…); plain JSON. */
  status?(): Record<string, unknown>
  /**
   * The stack of the thread or process running call `id` now, for the slow log (a worker's); null
   * when the call is not running or its stack cannot be read. Absent in process: the host's own
   * stack is all there is, and it is busy asking.
   */
  stackOf?(id: string): Promise<string | null>
  /** The threads or processes this generation runs in (a worker pool, a FastCGI pool), for the dashboard; absent in process. */
  processes?(): ModeProcess[]
}

/** One mode's way to run extensions; the registry holds one per mode in use. */
export interface Executor {
  readonly mode: Mode
  load(spec: LoadSpec): Promise<LoadedModule>
  /** Stops whatever the executor shares between generations (after every generation was disposed). */
  close(): Promise<void>
}
