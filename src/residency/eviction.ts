import { PerformanceObserver, constants as perf, performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import type { Logger } from '../sdk/types.ts'
import { forceGc } from './collection.ts'
import { sampleMemory, type MemorySample } from './memory.ts'
import type { AdvisoryResult, Registry } from './registry.ts'
import type { Slot } from './slot.ts'

export interface EvictionCandidate {
  name: string
  /** Epoch ms of last use. */
  lastActive: number
  /** Bytes its unload is expected to free (its load's heap growth; 0 when unknown). */
  estimate: number
}

/**
 * Least recently used first, until the estimates cover `needed` bytes (at least one candidate
 * when anything is needed: estimates are only estimates, the caller re-measures after a GC).
 */
export function planEviction(candidates: readonly EvictionCandidate[], needed: number): string[] {
  if (needed <= 0) return []
  const order = [...candidates].sort((a, b) => a.lastActive - b.lastActive)
  const plan: string[] = []
  let freed = 0
  for (const c of order) {
    if (freed >= needed && plan.length > 0) break
    plan.push(c.name)
    freed += c.estimate
  }
  return plan
}

const MAX_ROUNDS = 8

/**
 * Idle unload and memory-pressure eviction. A timer (unref'd) checks every `memory.checkInterval`;
 * every load also triggers a check, since loads are where memory grows. Only generations with no
 * request in flight are ever chosen.
 */
export class Evictor {
  readonly #registry: Registry
  readonly #config: ResidentConfig
  readonly #log: Logger
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #again = false
  #stopped = false
  /**
   * Bytes evicted (by estimate) that no major GC has reclaimed yet. Checks subtract it, so that one
   * eviction is not repeated while V8 gets round to freeing it; a major GC clears it.
   */
  #credits: Array<{ at: number; bytes: number }> = []
  #gcObserver: PerformanceObserver | null = null
  readonly evictions = { idle: 0, memory: 0 }
  /** Peak RSS seen at any check, and the last sample. */
  peakRss = 0
  last: MemorySample | null = null

  constructor(registry: Registry, config: ResidentConfig, log: Logger) {
    this.#registry = registry
    this.#config = config
    this.#log = log
  }

  start(): void {
    if (this.#timer || this.#stopped) return
    this.#timer = setInterval(() => { void this.#sweepIdle(); this.check() }, this.#config.memory.checkInterval)
    this.#timer.unref()
  }

  /**
   * Evicted bytes count as freed until the next major GC after the eviction. Watching GCs costs
   * something on every scavenge, so the observer runs only while such credits are outstanding.
   */
  #credit(bytes: number): void {
    this.#credits.push({ at: performance.now(), bytes })
    if (this.#gcObserver !== null || this.#stopped) return
    this.#gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        // Only what was evicted before this GC started can have been reclaimed by it.
        if (((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0) & perf.NODE_PERFORMANCE_GC_MAJOR) {
          this.#credits = this.#credits.filter((c) => c.at >= e.startTime)
        }
      }
      if (this.#credits.length === 0) this.#unwatchGc()
    })
    this.#gcObserver.observe({ entryTypes: ['gc'] })
  }

  #unwatchGc(): void {
    this.#gcObserver?.disconnect()
    this.#gcObserver = null
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#unwatchGc()
  }

  /** Samples memory now (status page), keeping the peak. */
  sample(): MemorySample {
    const s = sampleMemory(this.#config.memory.budget)
    this.last = s
    if (s.rss > this.peakRss) this.peakRss = s.rss
    return s
  }

  /** A load is starting: if it would push usage over the high watermark, make room first. */
  beforeLoad(slot: Slot): void {
    if (this.#stopped) return
    this.check(this.#estimateOf(slot))
  }

  #estimateOf(slot: Slot): number {
    return exactBytes(slot) ?? slot.heapGrowth ?? this.#averageGrowth()
  }

  /** What the loads under way are expected to add: memory that is coming whatever we measure now. */
  #loadingBytes(): number {
    let n = 0
    for (const slot of this.#registry.slots.values()) if (slot.loading) n += this.#estimateOf(slot)
    return n
  }

  afterLoad(): void {
    this.check()
  }

  /** Runs a pressure check (coalesced: one at a time, re-run once if asked meanwhile). */
  check(extra = 0): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    if (this.#running) { this.#again = true; return this.#running }
    this.#running = this.#relieve(extra).catch((e: unknown) => {
      this.#log.error({ err: e }, 'memory check failed')
    }).finally(() => {
      this.#running = null
      if (this.#again && !this.#stopped) { this.#again = false; void this.check() }
    })
    return this.#running
  }

  #averageGrowth(): number {
    let sum = 0, n = 0
    for (const s of this.#registry.slots.values()) if (s.heapGrowth) { sum += s.heapGrowth; n++ }
    return n ? sum / n : 0
  }

  async #relieve(extra: number): Promise<void> {
    const { highWatermark, lowWatermark } = this.#config.memory
    let s = this.#pressure()
    if (s.rawRatio >= 1 && this.#credits.length > 0) s = this.#collect() // past the limit itself: make evictions real now
    extra += this.#loadingBytes()
    if (s.ratio + this.#extraRatio(s, extra) < highWatermark) return
    const startRatio = s.rawRatio
    let evicted = 0
    const skip = new Set<string>()
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const needed = s.excessOver(lowWatermark) + extra
      const candidates = this.#candidates(skip)
      const plan = planEviction(candidates, needed)
      if (plan.length === 0) break
      // One after another, least recently used first (each resolves once out of service; disposal goes on).
      for (const name of plan) {
        const estimate = candidates.find((c) => c.name === name)!.estimate
        // A worker's memory comes back when it is terminated; only in-process bytes wait for a GC.
        const exact = exactBytes(this.#registry.slots.get(name)!) !== null
        const r: AdvisoryResult = await this.#registry.unloadIfIdle(name, 'memory')
        if (r === 'unloaded') {
          evicted++
          this.evictions.memory++
          if (!exact) this.#credit(estimate)
          this.#log.info({ extension: name, reason: 'memory', signal: s.signal }, `evicting ${name} (memory pressure, least recently used)`)
        } else skip.add(name)
      }
      extra = 0
      s = this.#pressure()
      if (s.ratio <= lowWatermark) break
      // Nothing known of what they hold: only a collection shows what the evictions gave back.
      if (plan.every((n) => !candidates.find((c) => c.name === n)!.estimate)) {
        s = this.#collect()
        if (s.ratio <= lowWatermark) break
      }
    }
    if (evicted > 0) {
      this.#log.info({ evicted, signal: s.signal, before: round2(startRatio), after: round2(s.ratio) },
        `memory pressure (${s.signal}): evicted ${evicted} idle extension(s), ${pct(startRatio)} → ${pct(s.ratio)} of the limit (after pending frees)`)
    } else if (this.#candidates(new Set()).length === 0) {
      this.#log.debug({ signal: s.signal, ratio: round2(s.ratio) }, 'memory pressure but nothing idle to evict')
    }
  }

  /** A sample with evicted-but-not-yet-collected bytes discounted. */
  #pressure(): MemorySample {
    let credit = 0
    for (const c of this.#credits) credit += c.bytes
    const s = sampleMemory(this.#config.memory.budget, true, credit)
    this.last = s
    if (s.rss > this.peakRss) this.peakRss = s.rss
    return s
  }

  /** Forces a full GC (when possible) so the sample shows what evictions freed. */
  #collect(): MemorySample {
    if (forceGc('eviction')) {
      this.#credits = []
      this.#unwatchGc()
    }
    return this.#pressure()
  }

  #extraRatio(s: MemorySample, extra: number): number {
    if (extra <= 0) return 0
    const limit = s.signal === 'rss' ? s.budget! : s.signal === 'cgroup' ? s.cgroup!.limit : s.heapLimit
    return extra / limit
  }

  #candidates(skip: Set<string>): EvictionCandidate[] {
    const out: EvictionCandidate[] = []
    for (const slot of this.#registry.slots.values()) {
      const gen = slot.current
      if (!gen || slot.loading || gen.inflight > 0 || slot.waiting > 0 || skip.has(slot.name)) continue
      out.push({ name: slot.name, lastActive: slot.lastActive, estimate: exactBytes(slot) ?? (slot.heapGrowth || this.#averageGrowth()) })
    }
    return out
  }

  async #sweepIdle(): Promise<void> {
    if (this.#stopped) return
    const now = performance.now()
    for (const slot of this.#registry.slots.values()) {
      const timeout = this.#registry.idleTimeoutOf(slot.name)
      const gen = slot.current
      if (timeout <= 0 || !gen || gen.inflight > 0 || now - slot.lastActive < timeout) continue
      const r = await this.#registry.unloadIfIdle(slot.name, 'idle')
      if (r === 'unloaded') this.evictions.idle++
    }
  }
}

/** What a generation holds when its mode measures it exactly (heap + external of a worker's isolates); null in process. */
export function exactBytes(slot: Slot): number | null {
  const m = slot.current?.module.memory?.()
  return m ? m.heapUsed + m.external : null
}

const round2 = (n: number) => Math.round(n * 100) / 100
const pct = (n: number) => `${Math.round(n * 100)}%`
