import { performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import type { Logger } from '../sdk/types.ts'
import { Admission, SMALL_LOAD, type AdmissionToken, type LoadMeasure, type RoomMaker } from './admission.ts'
import type { MemorySample } from './memory.ts'
import { MemoryReadings } from './readings.ts'
import type { AdvisoryResult, Registry } from './registry.ts'
import type { Slot } from './slot.ts'
import type { Generation } from './generation.ts'
import type { UnloadReason } from '../sdk/types.ts'

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
/** A round whose estimates say it was enough is judged by a forced GC at most this often (ms). */
const JUDGE_EVERY = 1_000
/** How long a judgement waits for the loads under way to finish (ms). */
const JUDGE_WAIT = 1_000
/** Over-budget warnings at most this often (ms); the episodes in between are logged at debug level. */
const WARN_EVERY = 60_000

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
export class Evictor implements RoomMaker {
  readonly #registry: Registry
  readonly #config: ResidentConfig
  readonly #log: Logger
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #again = false
  #stopped = false
  /** Readings, GC credits and the forced GCs that free them (readings.ts). */
  readonly #memory: MemoryReadings
  readonly evictions = { idle: 0, memory: 0 }
  /** Times eviction stopped and backed off because it did not help. */
  backoffs = 0
  /** Set while over the high watermark with nothing reclaimable; null otherwise. */
  overBudget: OverBudget | null = null
  #backoffUntil = 0
  #backoffStep = 0
  /** Generations evicted by the round being judged (or by admission meanwhile): the verdict waits for their disposal. */
  #disposals: Promise<void>[] = []
  #inRound = false
  /** Bytes loads have added since start (their measured growth): loads running beside an eviction round. */
  #loadedBytes = 0
  /** Loads wait for room (admission.ts); they evict through evictFor(). */
  readonly #admission: Admission
  #lastWarnAt = -Infinity
  /** The current over-budget episode was warned about. */
  #warned = false
  /** Until when rounds go by the estimates: a judged round helped less than JUDGE_EVERY ago (monotonic ms). */
  #trustedUntil = 0
  /** Set while a round is being judged: admissions wait for it. */
  #judging: Promise<void> | null = null
  /** Peak RSS seen at any reading, and the last sample. */
  get peakRss(): number { return this.#memory.peakRss }
  get last(): MemorySample | null { return this.#memory.last }

  constructor(registry: Registry, config: ResidentConfig, log: Logger) {
    this.#registry = registry
    this.#config = config
    this.#log = log
    this.#memory = new MemoryReadings(config, () => registry.processes())
    this.#admission = new Admission(this, () => registry.slots.values(), log)
  }

  /** Loads that waited for room under the limit, and those that went ahead over it. */
  get admission(): { waited: number; overBudget: number } { return this.#admission.counts }

  get highWatermark(): number { return this.#config.memory.highWatermark }
  get stopped(): boolean { return this.#stopped }
  backingOff(): boolean { return performance.now() < this.#backoffUntil }
  async judged(): Promise<void> { while (this.#judging) await this.#judging }

  start(): void {
    if (this.#timer || this.#stopped) return
    this.#timer = setInterval(() => { void this.#sweepIdle(); this.check() }, this.#config.memory.checkInterval)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#memory.stop()
    this.#admission.wake()
  }

  /** Samples memory now (status page), keeping the peak. */
  sample(): MemorySample { return this.#memory.sample() }

  /**
   * Waits (bounded) until a load of `slot` fits under the limit, evicting idle extensions for the
   * room it needs (admission.ts). Returns a token for loaded().
   */
  admit(slot: Slot): Promise<AdmissionToken> {
    return this.#admission.admit(slot, exactBytes(slot))
  }

  /**
   * An admitted load ended (`measured`: its heap + external growth and whether the reading is clean,
   * null when it failed or its mode measures exactly). Returns the estimate to keep for the extension.
   */
  loaded(slot: Slot, token: AdmissionToken, measured: LoadMeasure | null): number | null {
    const kept = this.#admission.loaded(slot, token, measured)
    this.afterLoad(measured?.bytes ?? 0)
    return kept
  }

  reclaimable(busy: boolean): number {
    let n = 0
    for (const c of this.#candidates(new Set(), busy, true)) n += c.estimate
    return n
  }

  /**
   * A generation was disposed (whatever the reason): what it held is garbage until a major GC, so
   * its estimate counts as freed until then (memory evictions are counted when they are made).
   * Loads that fit only on that credit collect it first (admission.ts).
   */
  retired(slot: Slot, gen: Generation, reason: UnloadReason): void {
    if (reason === 'memory' || this.#stopped || gen.module.memory || !slot.heapGrowth) return
    this.#memory.credit(slot.heapGrowth)
    this.#admission.wake()
    // Over the high watermark, its bytes are what the next load would wait for: collect them now,
    // in a turn of their own, rather than inside a request's cold load (not for a few bytes).
    if (slot.heapGrowth >= SMALL_LOAD && this.#memory.pressure().rawRatio >= this.highWatermark) void this.collect()
  }

  /**
   * A reload of `slot` would take the process past its limit with both generations resident (only
   * in process, where the old one's memory comes back after a GC): the old one must go first.
   */
  noRoomBeside(slot: Slot): boolean {
    if (this.#stopped || exactBytes(slot) !== null || !slot.heapGrowth) return false
    const s = this.#memory.pressure()
    return s.ratio + (this.#admission.loadingBytes() + slot.heapGrowth) / this.limitOf(s) > 1
  }

  /** A request ended: a load waiting for room looks again. */
  released(): void {
    this.#admission.wake()
  }

  async evictFor(bytes: number, loading: string): Promise<number> {
    const candidates = this.#candidates(new Set(), false, true)
    let freed = 0
    for (const name of planEviction(candidates, bytes)) {
      const c = candidates.find((x) => x.name === name)!
      if (await this.#evict(name, c.estimate, loading)) freed += c.estimate || 1
    }
    return freed
  }

  /**
   * Evicts `name` if it is idle (memory reason); its estimate counts as freed until the next major
   * GC. `forLoad`: the extension whose load needs the room (null: a pressure check).
   */
  async #evict(name: string, estimate: number, forLoad: string | null): Promise<boolean> {
    const slot = this.#registry.slots.get(name)
    if (!slot) return false
    const gen = slot.current
    // A worker's memory comes back when it is terminated; only in-process bytes wait for a GC.
    const exact = exactBytes(slot) !== null
    const r: AdvisoryResult = await this.#registry.unloadIfIdle(name, 'memory')
    if (r !== 'unloaded') return false
    if (gen?.disposed && this.#inRound) this.#disposals.push(gen.disposed)
    this.evictions.memory++
    if (!exact) this.#memory.credit(estimate)
    this.#log.info({ extension: name, reason: 'memory', forLoad }, forLoad !== null
      ? `evicting ${name} (memory pressure: room to load ${forLoad}, least recently used)`
      : `evicting ${name} (memory pressure, least recently used)`)
    return true
  }

  /** A load finished, having grown memory by about `bytes` (what an eviction round must not be blamed for). */
  afterLoad(bytes = 0): void {
    this.#memory.changed()
    this.#loadedBytes += bytes
    // No check of its own: the load was admitted with room for it (admission.ts), and a check
    // after every load would judge a round (forcing GCs) each time a reload holds two generations.
  }

  /** Resolves once no pressure check is running or due to re-run. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running
  }

  /** Runs a pressure check (coalesced: one at a time, re-run once if asked meanwhile). */
  check(extra = 0): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    if (this.#running) { this.#again = true; return this.#running }
    // From a turn of its own: a check asked for by a load that just finished may force a GC, which
    // must not run inside that request's call.
    this.#running = new Promise<void>((r) => setImmediate(r)).then(() => this.#relieve(extra)).catch((e: unknown) => {
      this.#log.error({ err: e }, 'memory check failed')
    }).finally(() => {
      this.#running = null
      if (this.#again && !this.#stopped) { this.#again = false; void this.check() }
    })
    return this.#running
  }

  async #relieve(extra: number): Promise<void> {
    const { highWatermark } = this.#config.memory
    let s = this.#memory.pressure()
    let collected = false
    // Past the limit itself: make evictions real now (a full GC costs tens of ms: once a JUDGE_EVERY at most).
    if (s.rawRatio >= 1 && this.#memory.credited && performance.now() - this.#memory.collectedAt >= JUDGE_EVERY) { s = this.#memory.collectNow(); collected = true }
    extra += this.#admission.loadingBytes()
    if (s.ratio + this.#extraRatio(s, extra) < highWatermark) {
      if (s.rawRatio < highWatermark) this.#recovered(s)
      return
    }
    // Evicting did not help last time: wait before trying again (the back-off doubles each time).
    if (performance.now() < this.#backoffUntil) return
    // A full GC costs tens of ms on the event loop: a round is judged (a GC before, a GC after)
    // unless one judged within JUDGE_EVERY helped; then it goes by the estimates (its bytes stay
    // credited until the next major GC). A round that does not help is found within JUDGE_EVERY.
    const judge = performance.now() >= this.#trustedUntil
    // A judged round starts from a collected heap: what the judging GC would free otherwise
    // includes garbage (a load's build output, requests' leftovers), not the round's doing; and
    // the GC alone may make all the room needed. RSS cannot judge a round by itself: the allocator
    // keeps freed Buffers' pages for reuse.
    if (judge && !collected && this.#candidates(new Set()).length > 0) {
      s = this.#memory.collectNow()
      collected = true
      if (s.ratio + this.#extraRatio(s, extra) < highWatermark) {
        if (s.rawRatio < highWatermark) this.#recovered(s)
        return
      }
    }
    this.#disposals = []
    this.#inRound = true
    try { await this.#evictRound(s, extra, judge, collected) } finally { this.#inRound = false; this.#disposals = [] }
  }

  /** One round: evict by the estimates down to the low watermark, then judge it when asked to. */
  async #evictRound(s: MemorySample, extra: number, judge: boolean, collected: boolean): Promise<void> {
    const { highWatermark, lowWatermark } = this.#config.memory
    const before = s
    const loadedBefore = this.#loadedBytes
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
        if (await this.#evict(name, estimate, null)) {
          evicted++
          estimated += estimate
        } else skip.add(name)
      }
      extra = 0
      s = this.#memory.pressure()
      if (s.ratio <= lowWatermark) break
    }
    if (evicted === 0) {
      // Over the watermark with nothing idle old enough to evict: say so (once), and wait.
      if (s.rawRatio >= highWatermark) this.#stuck(s, 0, 0)
      return
    }
    if (!judge || !collected) return
    // Measure again once the collection is known: the evicted generations disposed (until then
    // they still hold what they hold), the loads under way finished (no new one is admitted
    // meanwhile: a load half done would count against the round), a full GC, then usage without
    // any credit.
    let endJudging!: () => void
    this.#judging = new Promise<void>((r) => { endJudging = r })
    let after: MemorySample
    let unfinished = 0
    try {
      await Promise.allSettled(this.#disposals)
      const until = performance.now() + JUDGE_WAIT
      while (this.#admission.running > 0 && !this.#stopped && performance.now() < until) await this.#admission.nextRelease(until - performance.now())
      // Still running after JUDGE_WAIT: count what they are expected to add as added.
      unfinished = this.#admission.loadingBytes()
      after = this.#memory.collectNow()
    } finally {
      this.#judging = null
      endJudging()
    }
    // Requests keep loading extensions while the round runs: what they added is not the round's fault.
    const added = this.#loadedBytes - loadedBefore + unfinished
    const fell = before.rawRatio + added / after.limit - after.rawRatio
    // RSS need not shrink when the allocator keeps freed pages for reuse: what the process's own
    // memory (heap + ArrayBuffers) gave back counts too, since the next loads reuse it.
    // Only against a collected start: otherwise the garbage the judging GC frees (a load's build
    // output, requests' leftovers) would count as the round's.
    const jsFreed = collected ? before.jsBytes + added - after.jsBytes : 0
    if (after.rawRatio < highWatermark || fell >= MIN_DROP || jsFreed >= Math.max(MIN_DROP * after.limit, MIN_FREED)) {
      this.#log.info({ evicted, signal: after.signal, before: round2(before.rawRatio), after: round2(after.rawRatio), estimatedBytes: Math.round(estimated) },
        `memory pressure (${after.signal}): evicted ${evicted} idle extension(s), ${pct(before.rawRatio)} → ${pct(after.rawRatio)} of the limit`)
      this.#trustedUntil = performance.now() + JUDGE_EVERY
      if (after.rawRatio < highWatermark) this.#recovered(after)
      else this.#backoffStep = 0
      return
    }
    this.#trustedUntil = 0
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
    // Once per episode, and at most once every WARN_EVERY when usage keeps crossing the watermark.
    const now = performance.now()
    if (first && now - this.#lastWarnAt >= WARN_EVERY) {
      this.#lastWarnAt = now
      this.#warned = true
      this.#log.warn({ ...this.overBudget }, msg)
    } else this.#log.debug({ ...this.overBudget }, msg)
  }

  /**
   * Usage is back under the high watermark: the episode ends (logged if it was warned about). The
   * back-off's doubling is forgotten only under the low watermark (the hysteresis): usage that keeps
   * crossing the high one with nothing reclaimable still waits longer each time.
   */
  #recovered(s: MemorySample): void {
    this.#backoffUntil = 0
    if (s.rawRatio < this.#config.memory.lowWatermark) this.#backoffStep = 0
    if (this.overBudget === null) return
    const msg = `memory back under the high watermark (${s.signal} at ${pct(s.rawRatio)}); eviction resumes normally`
    if (this.#warned) this.#log.info({ signal: s.signal, ratio: round2(s.rawRatio) }, msg)
    else this.#log.debug({ signal: s.signal, ratio: round2(s.rawRatio) }, msg)
    this.#warned = false
    this.overBudget = null
  }

  /** A sample with evicted-but-not-yet-collected bytes discounted. */
  pressure(): MemorySample { return this.#memory.pressure() }

  /** One full GC for the loads waiting on uncollected bytes, shared (readings.ts). */
  collect(): Promise<void> { return this.#memory.collect() }

  #extraRatio(s: MemorySample, extra: number): number {
    return extra <= 0 ? 0 : extra / this.limitOf(s)
  }

  limitOf(s: MemorySample): number { return this.#memory.limitOf(s) }

  /**
   * `busy`: also those with requests in flight (what could be evicted once they end). `young`: also
   * those loaded less than minResidency ago (for a load waiting for room).
   */
  #candidates(skip: Set<string>, busy = false, young = false): EvictionCandidate[] {
    const out: EvictionCandidate[] = []
    // A just-loaded extension is kept for memory.minResidency: evicting what the next request loads
    // again frees nothing and costs a load. A load waiting for room is different: the budget comes
    // first, and least recently used still goes first.
    const youngest = young ? Infinity : performance.now() - this.#config.memory.minResidency
    for (const slot of this.#registry.slots.values()) {
      const gen = slot.current
      if (!gen || slot.loading || skip.has(slot.name)) continue
      if (!busy && (gen.inflight > 0 || slot.waiting > 0)) continue
      // Its serial chain is busy (a reload, an unload): the eviction would wait behind it, and a
      // load waiting for room there may be the one this eviction is for.
      if (slot.chained > 0 || this.#admission.has(slot)) continue
      if (gen.loadedAtMs > youngest) continue
      const estimate = exactBytes(slot) ?? (slot.heapGrowth || this.#admission.averageGrowth())
      out.push({ name: slot.name, lastActive: slot.lastActive, estimate })
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

