import type { CommandInfo, CommandTable } from '../dispatch/commands.ts'
import type { CommandRequest, Logger, UnloadReason } from '../sdk/types.ts'

/** Where a generation runs. Only `inprocess` exists so far; the others implement the same interface. */
export type Mode = 'inprocess' | 'worker' | 'fastcgi' | 'cgi'

export interface LoadSpec {
  name: string
  entry: string
  generation: number
  config: Record<string, unknown>
  log: Logger
}

/** One loaded generation of an extension, wherever it runs. */
export interface LoadedModule {
  readonly table: CommandTable
  /** Absolute paths of the files the build used: what a watcher must watch. */
  readonly inputs: readonly string[]
  /** An object that is collected when, and only when, the generation's code is (the class, in process). */
  readonly sentinel: object | null
  /**
   * Runs a command. Returns its result, or a promise of it when the command (or the way to it)
   * is async; throws or rejects with what the command threw. Executors that cross a thread or a
   * process always return a promise; in process, a synchronous command's value comes back as is.
   */
  invoke(command: CommandInfo, params: Record<string, unknown>, request: CommandRequest): unknown
  /** The extension's answer to an advisory unload. */
  canUnload(reason: UnloadReason): boolean
  /** Hot reload: the instance's exportState(), when it has one. */
  exportState?(): unknown
  /** Hot reload: hands the previous generation's state to the instance's importState(), when it has one. */
  importState?(state: unknown): Promise<void>
  /** Runs the extension's dispose(), then releases what it made through its host handle. */
  dispose(reason: UnloadReason): Promise<void>
}

export interface Executor {
  readonly mode: Mode
  load(spec: LoadSpec): Promise<LoadedModule>
  close(): Promise<void>
}
