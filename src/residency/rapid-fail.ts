import type { RapidFailSettings } from '../config/types.ts'
import { ResidentError } from '../errors.ts'

/**
 * Rapid-fail protection for one extension (IIS's rapid-fail, mod_isapi's retry delay): after
 * `maxFailures` failed loads within `window` it is marked failed and not rebuilt until a backoff
 * passes; each failed retry doubles the backoff, a successful load forgets everything.
 */
export class RapidFail {
  readonly #s: RapidFailSettings
  #failures: number[] = []
  /** How many times it tripped in a row (0 = healthy). */
  trips = 0
  /** Epoch ms before which no load is attempted (0 = none pending). */
  retryAt = 0

  constructor(settings: RapidFailSettings) {
    this.#s = settings
  }

  get failed(): boolean { return this.trips > 0 }

  /** Milliseconds until a load may be tried again; 0 when it may be tried now. */
  blockedFor(now = Date.now()): number {
    return this.trips > 0 ? Math.max(0, this.retryAt - now) : 0
  }

  /** The 503 a request gets while it waits: Retry-After in whole seconds, retryAt in `data`. */
  error(name: string, lastError?: string): ResidentError {
    const seconds = Math.max(1, Math.ceil(this.blockedFor() / 1000))
    return new ResidentError('RES_ERR_EXTENSION_FAILED', `extension "${name}" failed to load repeatedly; next attempt in ${seconds} s`, {
      headers: { 'retry-after': String(seconds) },
      data: { retryAt: new Date(this.retryAt).toISOString(), lastError },
    })
  }

  /** Records a failed load; true when this failure (re)marks the extension failed. */
  recordFailure(now = Date.now()): boolean {
    this.#failures = this.#failures.filter((t) => now - t < this.#s.window)
    this.#failures.push(now)
    if (this.trips === 0 && this.#failures.length < this.#s.maxFailures) return false
    this.trips++
    const backoff = Math.min(this.#s.backoff * 2 ** (this.trips - 1), this.#s.maxBackoff)
    this.retryAt = now + backoff
    return true
  }

  recordSuccess(): void {
    this.#failures = []
    this.trips = 0
    this.retryAt = 0
  }
}
