import type { Logger } from '../sdk/types.ts'
import type { Generation } from './generation.ts'

/**
 * What a watcher needs to know: a generation went into service, an extension left it, or a load
 * failed (`entry` is the file it tried, `error` what the request got, its cause the build error).
 */
export type RegistryEvent =
  | { type: 'installed'; name: string; generation: Generation; buildStartedAt: number }
  | { type: 'removed'; name: string }
  | { type: 'failed'; name: string; entry: string; error: unknown }

/** The registry's listeners; one that throws is logged and does not stop the others. */
export class RegistryEvents {
  readonly #listeners = new Set<(e: RegistryEvent) => void>()
  readonly #log: Logger

  constructor(log: Logger) {
    this.#log = log
  }

  /** Adds a listener; returns its removal. */
  add(fn: (e: RegistryEvent) => void): () => void {
    this.#listeners.add(fn)
    return () => { this.#listeners.delete(fn) }
  }

  emit(e: RegistryEvent): void {
    for (const fn of this.#listeners) {
      try { fn(e) } catch (err) { this.#log.error({ err }, 'registry listener threw') }
    }
  }
}
