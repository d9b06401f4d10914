import { ResidentError } from '../errors.ts'

interface Pending { at: number; expire(err: ResidentError): void }

/**
 * Command deadlines without a timer per request: one unref'd sweep checks the pending set.
 * (A setTimeout + Promise.race per request halved throughput in bench/overhead.)
 * Deadlines fire late by at most one sweep period (a quarter of the timeout, capped at 250 ms).
 */
export class Deadlines {
  readonly #ms: number
  readonly #pending = new Set<Pending>()
  #sweeper: NodeJS.Timeout | null = null

  constructor(ms: number) {
    this.#ms = ms
  }

  /** `work`, or a RES_ERR_TIMEOUT rejection once the deadline passes (then `onExpire` runs). */
  race<T>(work: Promise<T>, onExpire: (err: ResidentError) => void): Promise<T> {
    if (this.#ms <= 0) return work
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = {
        at: Date.now() + this.#ms,
        expire: (err) => { onExpire(err); reject(err) },
      }
      this.#pending.add(entry)
      this.#ensureSweeper()
      work.then(
        (v) => { this.#pending.delete(entry); resolve(v) },
        (e: unknown) => { this.#pending.delete(entry); reject(e) },
      )
    })
  }

  #ensureSweeper(): void {
    if (this.#sweeper) return
    const period = Math.max(5, Math.min(250, Math.floor(this.#ms / 4)))
    this.#sweeper = setInterval(() => this.#sweep(), period)
    this.#sweeper.unref()
  }

  #sweep(): void {
    if (this.#pending.size === 0) {
      clearInterval(this.#sweeper!)
      this.#sweeper = null
      return
    }
    const now = Date.now()
    for (const entry of this.#pending) {
      if (entry.at > now) continue
      this.#pending.delete(entry)
      entry.expire(new ResidentError('RES_ERR_TIMEOUT', `the command did not finish within ${this.#ms} ms`))
    }
  }
}
