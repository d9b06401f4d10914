import { performance } from 'node:perf_hooks'
import type { LoadedModule } from '../modes/executor.ts'
import type { UnloadReason } from '../sdk/types.ts'

/** One loaded copy of an extension's code and its instance, pinned by the requests using it. */
export class Generation {
  readonly id: number
  readonly name: string
  readonly module: LoadedModule
  /** When it loaded on the monotonic clock (`performance.now()` ms), for idle and LRU decisions. */
  readonly loadedAtMs = performance.now()
  /** Requests holding this generation. */
  inflight = 0
  retired: UnloadReason | null = null
  /** Settles once dispose() has run. */
  disposed: Promise<void> | null = null
  #onIdle: (() => void) | null = null

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

  /** True once no request holds it, false if some still do after `ms`. */
  async drained(ms: number): Promise<boolean> {
    if (this.inflight === 0) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
    try {
      return await Promise.race([this.idle().then(() => true as const), timedOut])
    } finally {
      clearTimeout(timer)
    }
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
