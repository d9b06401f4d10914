/** The part of pino's logger an extension may rely on (pino loggers satisfy it). */
export interface Logger {
  trace(obj: unknown, msg?: string): void
  debug(obj: unknown, msg?: string): void
  info(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
  child(bindings: Record<string, unknown>): Logger
}

export type Headers = Record<string, string | string[] | undefined>

/**
 * What a command sees of its request. Plain data (apart from `signal` and `log`, which every mode
 * recreates on its side), so that it crosses a thread or a process unchanged.
 */
export interface CommandRequest {
  /** The request id, also in every error body and log line. */
  id: string
  method: string
  /** The URL as dispatched (after filters mapped it), path and query. */
  url: string
  path: string
  query: Record<string, string | string[]>
  headers: Headers
  /** The parsed body: a JSON value, an object for urlencoded forms, a string for text, bytes otherwise. */
  body: unknown
  /** The body's bytes exactly as received (empty when there was none). */
  rawBody: Uint8Array
  contentType: string | null
  clientAddress: string
  /** The identity a filter attached in onAuthenticate, if any. */
  user?: unknown
  extension: string
  command: string
  /** Fires when the client goes away or the command's deadline passes. */
  signal: AbortSignal
  log: Logger
}

export type UnloadReason = 'idle' | 'memory' | 'reload' | 'admin' | 'shutdown' | 'removed' | 'fault'

export type TimerHandle = ReturnType<typeof globalThis.setTimeout>

/**
 * An extension's handle on the host: resources made through it are released when its generation is
 * unloaded, so that unloading really frees the code.
 */
export interface ExtensionHost {
  readonly name: string
  readonly generation: number
  /** The folder the extension's entry lives in. */
  readonly dir: string
  /** This extension's section of the config (`extensions.<name>.config`). */
  readonly config: Readonly<Record<string, unknown>>
  readonly log: Logger
  setTimeout(fn: () => void, ms: number): TimerHandle
  setInterval(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle | undefined): void
  clearInterval(handle: TimerHandle | undefined): void
  /** Runs when this generation is unloaded, after `dispose()`, in reverse order of registration. */
  onDispose(fn: () => void | Promise<void>): void
}
