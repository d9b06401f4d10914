import type { Logger as PinoLogger } from 'pino'
import type { Logger } from '../sdk/types.ts'

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request logger whose pino child (and its serialised bindings) is made only when a line is
 * actually written at an enabled level. Fastify makes a child per request; most requests never log,
 * and making one cost several µs of bench/overhead's per-request CPU.
 */
export class LazyChildLogger {
  readonly #parent: PinoLogger
  readonly #bindings: Record<string, unknown>
  readonly #opts: object
  #child: PinoLogger | null = null

  constructor(parent: PinoLogger, bindings: Record<string, unknown>, opts: object) {
    this.#parent = parent
    this.#bindings = bindings
    this.#opts = opts
  }

  #real(): PinoLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#opts))
  }

  #write(level: Level, args: unknown[]): void {
    if (!this.#parent.isLevelEnabled(level)) return
    ;(this.#real()[level] as (...a: unknown[]) => void)(...args)
  }

  fatal(...args: unknown[]): void { this.#write('fatal', args) }
  error(...args: unknown[]): void { this.#write('error', args) }
  warn(...args: unknown[]): void { this.#write('warn', args) }
  info(...args: unknown[]): void { this.#write('info', args) }
  debug(...args: unknown[]): void { this.#write('debug', args) }
  trace(...args: unknown[]): void { this.#write('trace', args) }
  silent(): void {}
  child(bindings: Record<string, unknown>, opts?: object): PinoLogger { return this.#real().child(bindings, opts) }
  bindings(): Record<string, unknown> { return this.#real().bindings() }
  isLevelEnabled(level: string): boolean { return this.#parent.isLevelEnabled(level) }
  get level(): string { return this.#child?.level ?? this.#parent.level }
  set level(value: string) { this.#real().level = value }
}

/**
 * The logger of one request: lines carry its `requestId`. Resident makes these itself, only where
 * something may log (a command, a filter, the error handler), instead of having fastify make one
 * per request through a childLoggerFactory, which also validates every child it gets (≈ 1 µs per
 * request in bench/overhead); fastify's own `request.log` is its silent null logger.
 */
export function requestLogger(root: PinoLogger, requestId: string): Logger {
  return new LazyChildLogger(root, { requestId }, {})
}
