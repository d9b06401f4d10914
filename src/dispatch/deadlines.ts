import { ResidentError } from '../errors.ts'

/** A command's deadline, from start() until stop(). */
export interface Deadline { at: number; expire(err: ResidentError): void }

/**
 * Command deadlines without a timer or a promise per request: one unref'd sweep checks the set of
 * running commands. (A setTimeout + Promise.race per request halved throughput in bench/overhead.)
 * Deadlines fire late by at most one sweep period (a quarter of the timeout, capped at 250 ms).
 */
export class Deadlines {
  readonly #ms: number
  readonly #pending = new Set<Deadline>()
  #sweeper: NodeJS.Timeout | null = null

  readonly #what: string

  /** `what` names what is timed in the error's message ("command", "streamed response"). */
  constructor(ms: number, what = 'command') {
    this.#ms = ms
    this.#what = what
  }

  /** The deadline of a command starting now (epoch ms), or 0 when there is none. */
  deadlineFromNow(): number {
    return this.#ms > 0 ? Date.now() + this.#ms : 0
  }

  /** The deadline in ms (0 = none). */
  get ms(): number { return this.#ms }

  /**
   * Calls `expire` with a RES_ERR_TIMEOUT once the deadline passes, unless stop() came first.
   * `spent` is how much of it has gone already (a stream's deadline counts from the request's start).
   */
  start(expire: (err: ResidentError) => void, spent = 0): Deadline | null {
    if (this.#ms <= 0) return null
    const entry: Deadline = { at: Date.now() + this.#ms - spent, expire }
    this.#pending.add(entry)
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(5, Math.min(250, Math.floor(this.#ms / 4))))
      this.#sweeper.unref()
    }
    return entry
  }

  stop(entry: Deadline | null): void {
    if (entry !== null) this.#pending.delete(entry)
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
      entry.expire(new ResidentError('RES_ERR_TIMEOUT', `the ${this.#what} did not finish within ${this.#ms} ms`))
    }
  }
}
