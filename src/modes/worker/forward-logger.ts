import type { MessagePort } from 'node:worker_threads'
import type { FromWorker } from './protocol.ts'

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity }

/** Any value as something a structured clone carries: errors as their fields, functions and the like as text. */
function cloneable(v: unknown, depth = 0): unknown {
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code
    return { type: v.name, message: v.message, stack: v.stack, ...(typeof code === 'string' ? { code } : {}) }
  }
  if (v === null || typeof v !== 'object') return typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' ? String(v) : v
  if (depth > 8) return '[deep]'
  if (Array.isArray(v)) return v.map((x) => cloneable(x, depth + 1))
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = cloneable((v as Record<string, unknown>)[k], depth + 1)
  return out
}

/**
 * The logger a worker's extension writes to: each line enabled at the host's level is posted to
 * the host, which writes it with the generation's logger (so it lands wherever the host's lines
 * go: a file, the terminal, a test's capture). Shaped like the part of pino that commands and the
 * host handle use.
 */
export class ForwardLogger {
  readonly #port: MessagePort
  readonly #bindings: Record<string, unknown>
  readonly #min: number
  level: string

  constructor(port: MessagePort, level: string, bindings: Record<string, unknown> = {}) {
    this.#port = port
    this.level = level
    this.#min = LEVELS[level] ?? 30
    this.#bindings = bindings
  }

  isLevelEnabled(level: string): boolean {
    return (LEVELS[level] ?? 0) >= this.#min
  }

  #write(level: string, obj: unknown, msg?: string): void {
    if (!this.isLevelEnabled(level)) return
    const [o, m] = typeof obj === 'string' && msg === undefined ? [{}, obj] : [obj, msg]
    const message: FromWorker = { t: 'log', level, bindings: this.#bindings, obj: cloneable(o), msg: m }
    this.#port.postMessage(message)
  }

  trace(obj: unknown, msg?: string): void { this.#write('trace', obj, msg) }
  debug(obj: unknown, msg?: string): void { this.#write('debug', obj, msg) }
  info(obj: unknown, msg?: string): void { this.#write('info', obj, msg) }
  warn(obj: unknown, msg?: string): void { this.#write('warn', obj, msg) }
  error(obj: unknown, msg?: string): void { this.#write('error', obj, msg) }
  fatal(obj: unknown, msg?: string): void { this.#write('fatal', obj, msg) }
  silent(): void {}
  child(bindings: Record<string, unknown>): ForwardLogger {
    return new ForwardLogger(this.#port, this.level, { ...this.#bindings, ...bindings })
  }
  bindings(): Record<string, unknown> { return { ...this.#bindings } }
}
