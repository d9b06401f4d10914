import { defaults } from '../config/defaults.ts'
import type { RapidFailSettings } from '../config/types.ts'
import type { UnloadReason } from '../sdk/types.ts'
import type { RetiredRecord } from './collection.ts'
import type { Generation } from './generation.ts'
import { RapidFail } from './rapid-fail.ts'
import { RequestStats } from './request-stats.ts'

export type SlotState = 'unloaded' | 'loading' | 'resident' | 'draining' | 'failed'

/** The last N command durations, for p50/p99 on the status page. */
export class LatencyWindow {
  readonly #ms: Float64Array
  #n = 0

  constructor(size = 1024) {
    this.#ms = new Float64Array(size)
  }

  add(ms: number): void {
    this.#ms[this.#n % this.#ms.length] = ms
    this.#n++
  }

  percentiles(): { p50: number | null; p99: number | null; samples: number } {
    const n = Math.min(this.#n, this.#ms.length)
    if (n === 0) return { p50: null, p99: null, samples: 0 }
    const sorted = this.#ms.slice(0, n).sort()
    const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))]! * 100) / 100
    return { p50: at(0.5), p99: at(0.99), samples: n }
  }
}

/** Everything the registry knows of one extension, loaded or not. */
export class Slot {
  readonly name: string
  entry: string
  current: Generation | null = null
  loading: Promise<Generation> | null = null
  /** Retired generations still serving requests. */
  readonly draining = new Set<Generation>()
  /** Serialises reloads and unloads of this extension. */
  chain: Promise<unknown> = Promise.resolve()
  nextGeneration = 1
  requestsTotal = 0
  inFlight = 0
  /** Requests waiting for a load of this extension to finish (not yet leased). */
  waiting = 0
  errors = 0
  /**
   * When the last request ended, on the monotonic clock (`performance.now()` ms; 0 = never): on
   * every request's path, so one clock read shared with the latency, not a Date.
   */
  lastUsed = 0
  lastError: { message: string; at: Date } | null = null
  /** Exceptions raised outside any request by this extension's code (each retired its generation). */
  faults = 0
  lastFault: { message: string; generation: number; at: Date } | null = null
  /** The most recent retirements, newest last, with their collection verdicts. */
  retired: RetiredRecord[] = []
  readonly latency = new LatencyWindow()
  /** Status classes and a latency histogram, for /_resident/metrics. */
  readonly stats = new RequestStats()
  /** Of the current generation: load duration and heap+external growth around the load (an estimate). */
  loadMs: number | null = null
  heapGrowth: number | null = null
  readonly unloads: Partial<Record<UnloadReason, number>> = {}
  /** Advisory unloads canUnload() declined since the last unload. */
  declines = 0
  leaksSuspected = 0
  readonly rapid: RapidFail

  constructor(name: string, entry: string, rapidFail: RapidFailSettings = defaults.rapidFail) {
    this.name = name
    this.entry = entry
    this.rapid = new RapidFail(rapidFail)
  }

  get state(): SlotState {
    if (this.current) return 'resident'
    if (this.loading) return 'loading'
    if (this.rapid.failed) return 'failed'
    if (this.draining.size > 0) return 'draining'
    return 'unloaded'
  }

  /** Counts a finished retirement and keeps its record (the last 20) for the status page. */
  recordRetired(generation: number, reason: UnloadReason): RetiredRecord {
    this.unloads[reason] = (this.unloads[reason] ?? 0) + 1
    const record: RetiredRecord = { generation, reason, at: new Date(), collected: null }
    this.retired.push(record)
    if (this.retired.length > 20) this.retired.shift()
    return record
  }

  /** When it was last used, or loaded if never used (monotonic ms): what LRU and idle timeouts go by. */
  get lastActive(): number {
    return this.lastUsed || (this.current?.loadedAtMs ?? 0)
  }
}
