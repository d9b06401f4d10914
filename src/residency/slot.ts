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

/** The last failure answered for an extension (a 5xx or a failed load). */
export interface LastError {
  code: string
  message: string
  at: Date
  /** The request it answered; null for a load no request was waiting for (a save, an admin reload). */
  requestId: string | null
}

/** How many generations an extension has had, by state: created = current + loading + draining + retired. */
export interface GenerationLedger {
  created: number
  current: number
  loading: number
  draining: number
  retired: number
}

/** Everything the registry knows of one extension, loaded or not. */
export class Slot {
  readonly name: string
  entry: string
  current: Generation | null = null
  loading: Promise<Generation> | null = null
  /** Generations the executor returned that are not installed yet. */
  readonly loadingGens = new Set<Generation>()
  /** Retired generations still serving requests, or being disposed. */
  readonly draining = new Set<Generation>()
  /** Generations the executor returned, and those fully retired (disposed, watched). */
  createdTotal = 0
  retiredTotal = 0
  /** Serialises every load, reload, install and unload of this extension. */
  chain: Promise<unknown> = Promise.resolve()
  /** Jobs queued or running in `chain`: an eviction would wait behind them. */
  chained = 0
  nextGeneration = 1
  requestsTotal = 0
  /** Requests waiting for a load of this extension to finish (not yet leased). */
  waiting = 0
  /** Requests answered with a 5xx for this extension. */
  errors = 0
  /** Loads that failed (with or without a request waiting). */
  loadFailures = 0
  /** Reloads that found no room for two generations under the memory limit, so the old one left first. */
  reloadsWithoutOverlap = 0
  /**
   * When the last request ended, on the monotonic clock (`performance.now()` ms; 0 = never): on
   * every request's path, so one clock read shared with the latency, not a Date.
   */
  lastUsed = 0
  lastError: LastError | null = null
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
  /** The last few growths measured (the estimate is their median: one blurred or GC-shrunk reading does not swing it). */
  readonly growthSamples: number[] = []
  /** How many of those were measured with no other load beside it. */
  cleanSamples = 0
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

  /** Requests holding any generation of this extension: counted from the generations, so it cannot drift. */
  get inFlight(): number {
    let n = this.current?.inflight ?? 0
    for (const g of this.draining) n += g.inflight
    for (const g of this.loadingGens) n += g.inflight
    return n
  }

  /** The invariant's figures; `created` is kept apart from the sets so a lost generation shows. */
  get ledger(): GenerationLedger {
    return {
      created: this.createdTotal,
      current: this.current ? 1 : 0,
      loading: this.loadingGens.size,
      draining: this.draining.size,
      retired: this.retiredTotal,
    }
  }

  /** Nothing of it is alive: no current, loading or draining generation. */
  get idle(): boolean {
    return !this.current && !this.loading && this.loadingGens.size === 0 && this.draining.size === 0
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
    this.retiredTotal++
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
