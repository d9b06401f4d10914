import { PerformanceObserver, constants as perf, performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import type { Logger } from '../sdk/types.ts'
import { forceGc } from './collection.ts'
import { rssOfProcess, sampleMemory, type MemorySample } from './memory.ts'
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
 * An eviction round helped when usage (or the heap + ArrayBuffers) fell by at least this fraction of
 * the limit after a full GC.
 */
const MIN_DROP = 0.01
/** …and gave back at least this much of the heap + ArrayBuffers (what a module's code alone frees is less). */
const MIN_FREED = 1024 * 1024
/** The longest wait between eviction attempts that did not help, in ms. */
const BACKOFF_MAX = 60_000

/** What status shows while evicting cannot bring usage under the high watermark. */
export interface OverBudget {
  state: 'over budget, nothing reclaimable'
  since: string
  signal: MemorySample['signal']
  ratio: number
  usage: number
  limit: number
  lastEvicted: number
  lastFreedBytes: number
  retryAt: string | null
}

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
  /** Times eviction stopped and backed off because it did not help. */
  backoffs = 0
  /** Set while over the high watermark with nothing reclaimable; null otherwise. */
  overBudget: OverBudget | null = null
  #backoffUntil = 0
  #backoffStep = 0
  /** Bytes loads have added since start (their measured growth): loads running beside an eviction round. */
  #loadedBytes = 0
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
    const s = sampleMemory(this.#config.memory.budget, true, 0, this.#processesRss())
    this.last = s
    if (s.rss > this.peakRss) this.peakRss = s.rss
    return s
  }

  /** RSS of the processes the out-of-process modes run for this host. */
  #processesRss(): number {
    let n = 0
    for (const p of this.#registry.processes()) if (p.pid !== null) n += rssOfProcess(p.pid)
    return n
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

  /** A load finished, having grown memory by about `bytes` (what an eviction round must not be blamed for). */
  afterLoad(bytes = 0): void {
    this.#loadedBytes += bytes
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
    if (s.ratio + this.#extraRatio(s, extra) < highWatermark) {
      if (s.rawRatio < highWatermark) this.#recovered(s)
      return
    }
    // Evicting did not help last time: wait before trying again (the back-off doubles each time).
    if (performance.now() < this.#backoffUntil) return
    const before = s
    const loadedBefore = this.#loadedBytes
    const disposals: Promise<void>[] = []
    let evicted = 0
    let estimated = 0
    const skip = new Set<string>()
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const needed = s.excessOver(lowWatermark) + extra
      const candidates = this.#candidates(skip)
      const plan = planEviction(candidates, needed)
      if (plan.length === 0) break
      // One after another, least recently used first (each resolves once out of service; disposal goes on).
      for (const name of plan) {
        const estimate = candidates.find((c) => c.name === name)!.estimate
        const gen = this.#registry.slots.get(name)?.current
        // A worker's memory comes back when it is terminated; only in-process bytes wait for a GC.
        const exact = exactBytes(this.#registry.slots.get(name)!) !== null
        const r: AdvisoryResult = await this.#registry.unloadIfIdle(name, 'memory')
        if (r === 'unloaded') {
          if (gen?.disposed) disposals.push(gen.disposed)
          evicted++
          estimated += estimate
          this.evictions.memory++
          if (!exact) this.#credit(estimate)
          this.#log.info({ extension: name, reason: 'memory', signal: s.signal }, `evicting ${name} (memory pressure, least recently used)`)
        } else skip.add(name)
      }
      extra = 0
      s = this.#pressure()
      if (s.ratio <= lowWatermark) break
    }
    if (evicted === 0) {
      // Over the watermark with nothing idle old enough to evict: say so (once), and wait.
      if (s.rawRatio >= highWatermark) this.#stuck(s, 0, 0)
      return
    }
    // Measure again once the collection is known: the evicted generations disposed (until then
    // they still hold what they hold), a full GC, then usage without any credit.
    await Promise.allSettled(disposals)
    const after = this.#collect()
    // Requests keep loading extensions while the round runs: what they added is not the round's fault.
    const added = this.#loadedBytes - loadedBefore
    const fell = before.rawRatio + added / after.limit - after.rawRatio
    // RSS need not shrink when the allocator keeps freed pages for reuse: what the process's own
    // memory (heap + ArrayBuffers) gave back counts too, since the next loads reuse it.
    const jsFreed = before.jsBytes + added - after.jsBytes
    if (after.rawRatio < highWatermark || fell >= MIN_DROP || jsFreed >= Math.max(MIN_DROP * after.limit, MIN_FREED)) {
      this.#log.info({ evicted, signal: after.signal, before: round2(before.rawRatio), after: round2(after.rawRatio), estimatedBytes: Math.round(estimated) },
        `memory pressure (${after.signal}): evicted ${evicted} idle extension(s), ${pct(before.rawRatio)} → ${pct(after.rawRatio)} of the limit`)
      if (after.rawRatio < highWatermark) this.#recovered(after)
      else this.#backoffStep = 0
      return
    }
    this.#stuck(after, evicted, Math.max(0, fell * after.limit, jsFreed))
  }

  /**
   * Usage stays over the high watermark and evicting does not bring it down (or there is nothing to
   * evict): stop, back off (doubling up to BACKOFF_MAX), and say it once in the log and in status.
   */
  #stuck(s: MemorySample, evicted: number, freedBytes: number): void {
    // Nothing was evicted: there is nothing to wait for (the next idle extension may be evicted at
    // once); evictions that did not help back off, doubling each time.
    let wait = 0
    if (evicted > 0) {
      wait = Math.min(BACKOFF_MAX, Math.max(1000, this.#config.memory.checkInterval) * 2 ** this.#backoffStep)
      this.#backoffStep = Math.min(this.#backoffStep + 1, 10)
      this.#backoffUntil = performance.now() + wait
      this.backoffs++
    }
    const first = this.overBudget === null
    this.overBudget = {
      state: 'over budget, nothing reclaimable',
      since: this.overBudget?.since ?? new Date().toISOString(),
      signal: s.signal,
      ratio: round3(s.rawRatio),
      usage: s.usage,
      limit: s.limit,
      lastEvicted: evicted,
      lastFreedBytes: Math.round(freedBytes),
      retryAt: wait > 0 ? new Date(Date.now() + wait).toISOString() : null,
    }
    const what = evicted > 0
      ? `evicting ${evicted} extension(s) freed ${mb(freedBytes)} MB`
      : 'no idle extension resident long enough to evict'
    const msg = `over budget, nothing reclaimable: ${s.signal} at ${mb(s.usage)} MB of ${mb(s.limit)} MB (${pct(s.rawRatio)}); ${what}` +
      (wait > 0 ? `; not evicting again for ${Math.round(wait / 1000)} s` : '')
    if (first) this.#log.warn({ ...this.overBudget }, msg)
    else this.#log.debug({ ...this.overBudget }, msg)
  }

  /** Usage is back under the high watermark: forget the back-off (logged once if there was one). */
  #recovered(s: MemorySample): void {
    this.#backoffStep = 0
    this.#backoffUntil = 0
    if (this.overBudget === null) return
    this.#log.info({ signal: s.signal, ratio: round2(s.rawRatio) }, `memory back under the high watermark (${s.signal} at ${pct(s.rawRatio)}); eviction resumes normally`)
    this.overBudget = null
  }

  /** A sample with evicted-but-not-yet-collected bytes discounted. */
  #pressure(): MemorySample {
    let credit = 0
    for (const c of this.#credits) credit += c.bytes
    const s = sampleMemory(this.#config.memory.budget, true, credit, this.#processesRss())
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
    // A just-loaded extension is kept for memory.minResidency: evicting what the next request loads
    // again frees nothing and costs a load.
    const youngest = performance.now() - this.#config.memory.minResidency
    for (const slot of this.#registry.slots.values()) {
      const gen = slot.current
      if (!gen || slot.loading || gen.inflight > 0 || slot.waiting > 0 || skip.has(slot.name)) continue
      if (gen.loadedAtMs > youngest) continue
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
const round3 = (n: number) => Math.round(n * 1000) / 1000
const mb = (n: number) => Math.round(n / 1024 ** 2)
const pct = (n: number) => `${Math.round(n * 100)}%`
