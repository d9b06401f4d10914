import { performance } from 'node:perf_hooks'
import type { LoadedModule } from '../modes/executor.ts'
import type { UnloadReason } from '../sdk/types.ts'

/**
 * Where a generation is in its life. Every generation the executor returned is in exactly one of
 * these, and moves only forward: loading → current → draining → retired, or loading → draining →
 * retired when it is discarded (a failed state hand-over, a load finishing during shutdown).
 */
export type GenerationState = 'loading' | 'current' | 'draining' | 'retired'

/** One loaded copy of an extension's code and its instance, pinned by the requests using it. */
export class Generation {
  readonly id: number
  readonly name: string
  readonly module: LoadedModule
  /** When it loaded on the monotonic clock (`performance.now()` ms), for idle and LRU decisions. */
  readonly loadedAtMs = performance.now()
  state: GenerationState = 'loading'
  /** Requests holding this generation: the one count of leases (the slot's inFlight adds these up). */
  inflight = 0
  /**
   * Commands still running after their request was answered 504: they hold no lease (retirement does
   * not wait for them) but are reported, since they still run code of this generation.
   */
  abandoned = 0
  retired: UnloadReason | null = null
  /** Settles once dispose() has run. */
  disposed: Promise<void> | null = null
  #onIdle: (() => void) | null = null
  #cutDrain: (() => void) | null = null

  constructor(id: number, name: string, module: LoadedModule) {
    this.id = id
    this.name = name
    this.module = module
  }

  acquire(): this {
    this.inflight++
    return this
  }

  release(): void {
    this.inflight--
    if (this.inflight === 0 && this.#onIdle) {
      const fn = this.#onIdle
      this.#onIdle = null
      fn()
    }
  }

  /** True once no request holds it, false if some still do after `ms` (or after hurry()). */
  async drained(ms: number): Promise<boolean> {
    if (this.inflight === 0) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms)
      this.#cutDrain = () => resolve(false)
    })
    try {
      return await Promise.race([this.idle().then(() => true as const), timedOut])
    } finally {
      clearTimeout(timer)
      this.#cutDrain = null
    }
  }

  /** Ends a drain under way within `ms` (shutdown's one deadline applies to drains already running). */
  hurry(ms: number): void {
    const cut = this.#cutDrain
    if (!cut) return
    if (ms <= 0) cut()
    else setTimeout(cut, ms).unref()
  }

  /** Resolves when no request holds this generation. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const prev = this.#onIdle
      this.#onIdle = () => { prev?.(); resolve() }
    })
  }
}
