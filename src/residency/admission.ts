import { performance } from 'node:perf_hooks'
import type { Logger } from '../sdk/types.ts'
import type { MemorySample } from './memory.ts'
import type { Slot } from './slot.ts'

/**
 * The longest a load waits for room under the limit (ms). After that it goes ahead over budget:
 * serving the request matters more than the budget, and status counts it.
 */
const ADMIT_WAIT = 2_000
/** How often a load waiting for room looks again when no request ended meanwhile (ms). */
const ADMIT_POLL = 50
/** A load expected to add less than this is never held back for room (bytes). */
export const SMALL_LOAD = 1024 * 1024
/** How many of an extension's last load growths its estimate is the median of. */
const GROWTH_SAMPLES = 5

/** What admission needs from eviction: the readings, and idle extensions to take room from. */
export interface RoomMaker {
  /** A sample with evicted-but-not-yet-collected bytes discounted. */
  pressure(): MemorySample
  /** The dominant signal's limit in bytes. */
  limitOf(s: MemorySample): number
  readonly highWatermark: number
  /**
   * Forces one full GC (shared by the loads asking meanwhile, never inside a request's own call)
   * and resolves once V8 has freed what it found dead.
   */
  collect(): Promise<void>
  /** Evicting did not help lately: loads take no room and wait for none. */
  backingOff(): boolean
  /** Resolves once no eviction round is being judged (a load admitted meanwhile would blur the verdict). */
  judged(): Promise<void>
  /**
   * Bytes (by estimate) that evicting extensions could free, young ones included: the idle ones
   * now, or (`busy`) every one once its requests end.
   */
  reclaimable(busy: boolean): number
  /**
   * Evicts idle extensions, least recently used first, young ones included, until their estimates
   * cover `bytes` (at least one when any is needed), for the load of `loading`. Resolves with the
   * bytes evicted (by estimate).
   */
  evictFor(bytes: number, loading: string): Promise<number>
  readonly stopped: boolean
}

/**
 * What a load was measured to add: `clean` when nothing else ran beside it (null: the executor
 * cannot tell), `collected` when a GC ran meanwhile (the reading is then only a lower bound).
 */
export interface LoadMeasure { bytes: number; clean: boolean | null; collected: boolean }

/** Which load a token was handed to, and whether another was under way then. */
export interface AdmissionToken { seq: number; beside: boolean }

/**
 * Admission: a load goes ahead once usage (evicted-but-uncollected bytes discounted), the loads
 * already admitted and its own expected growth fit under the high watermark. Until then it makes
 * the room itself: it evicts idle extensions for what is missing (least recently used first; a load
 * waiting for room outranks minResidency, since the budget comes first), and when none is idle, it
 * waits for a request to end, for at most ADMIT_WAIT; then it goes ahead anyway. Loads that cannot
 * fit even after evicting everything go ahead at once. A load that fits only on the credit of
 * retired generations not collected yet, and would take the process past the limit itself before
 * they are, waits for one GC (shared) instead. It also keeps each extension's estimate: what its
 * loads were measured to add.
 */
export class Admission {
  readonly #room: RoomMaker
  readonly #log: Logger
  /** Loads admitted and running, with the bytes each is expected to add. */
  readonly #admitted = new Map<Slot, number>()
  /** Loads waiting for room. */
  readonly #admitting = new Set<Slot>()
  /** Bumped by every admitted load: a load that saw it change ran beside another. */
  #loadSeq = 0
  #wakers: Array<() => void> = []
  /** Bytes the loads waiting for room are evicting right now, and those evictions. */
  #evicting = 0
  readonly #evictions = new Set<Promise<number>>()
  /** Loads that waited for room under the limit, and those that went ahead over it. */
  readonly counts = { waited: 0, overBudget: 0 }
  /** Every slot's estimate source, for the average a never-measured extension is given. */
  readonly #slots: () => Iterable<Slot>

  constructor(room: RoomMaker, slots: () => Iterable<Slot>, log: Logger) {
    this.#room = room
    this.#slots = slots
    this.#log = log
  }

  /** The slot's load is admitted or waiting for admission (its serial chain is busy with it). */
  has(slot: Slot): boolean {
    return this.#admitted.has(slot) || this.#admitting.has(slot)
  }

  /** What the admitted loads under way are expected to add: memory that is coming whatever we measure now. */
  loadingBytes(): number {
    let n = 0
    for (const bytes of this.#admitted.values()) n += bytes
    return n
  }

  get running(): number { return this.#admitted.size }

  /** Waits (bounded) until the load of `slot` fits; returns the token loaded() takes. */
  async admit(slot: Slot, exact: number | null): Promise<AdmissionToken> {
    const estimate = exact ?? this.estimateOf(slot)
    // Measured to add next to nothing (an estimate it was given from others' does not count).
    const small = (exact ?? slot.heapGrowth ?? Infinity) < SMALL_LOAD
    const room = this.#room
    await room.judged()
    const deadline = performance.now() + ADMIT_WAIT
    let waited = false
    let collected = false
    const wait = () => {
      if (waited) return
      waited = true
      this.counts.waited++
      this.#admitting.add(slot)
    }
    try {
      for (;;) {
        if (room.stopped) break
        const s = room.pressure()
        const limit = room.limitOf(s)
        const adding = (this.loadingBytes() + estimate) / limit
        const after = s.ratio + adding
        // Under the high watermark; past it, loads go one at a time (each is then measured alone),
        // up to the limit itself. A load makes room for what it adds, no more: one that adds next
        // to nothing goes ahead (usage already over the watermark is the checks' business).
        const fits = (ratio: number) => ratio < room.highWatermark || (this.#admitted.size === 0 && ratio <= 1) || small
        // Uncollected bytes of generations already retired: one GC, and the load need not wait for more.
        const garbage = s.ratio < s.rawRatio && !collected && performance.now() < deadline
        if (fits(after)) {
          // It fits on the credit of retired bytes not collected yet, but loading before they are
          // would take the process past the limit itself: collect them first.
          if (s.rawRatio + adding <= 1 || !garbage || small) break
          wait()
          await room.collect()
          collected = true
          continue
        }
        // Evicting did not help lately, or even evicting every extension (once its requests end)
        // could not make the room: the process itself, a leak, another tenant or the extension
        // being reloaded holds the memory. Evicting what can be evicted would free nothing that
        // counts: go ahead (counted when over the limit itself), once any garbage is collected.
        // (The loads under way are not counted: once their requests end, they are reclaimable too.)
        if (room.backingOff() || s.ratio + (estimate - room.reclaimable(true)) / limit > 1) {
          if (garbage && s.rawRatio + adding > 1) {
            wait()
            await room.collect()
            collected = true
            continue
          }
          if (after > 1) this.counts.overBudget++
          break
        }
        wait()
        // Take the missing room from idle extensions, by estimate: their bytes count as freed at
        // once (until the GC that frees them), so the next look sees the room.
        const freed = room.reclaimable(false) > 0 ? await this.#makeRoom(slot.name, () => {
          const now = room.pressure()
          const adding = this.loadingBytes() + estimate
          return Math.min(adding, (now.ratio - room.highWatermark) * room.limitOf(now) + adding)
        }) : 0
        await room.judged()
        if (freed > 0) continue
        const left = deadline - performance.now()
        if (left <= 0) {
          if (after > 1) this.counts.overBudget++
          this.#log.debug({ extension: slot.name }, `loading ${slot.name} over budget: no room made within ${ADMIT_WAIT} ms`)
          break
        }
        // Nothing idle: the extensions that could make room have requests in flight. Wait for one to end.
        await this.#nextRelease(Math.min(left, ADMIT_POLL))
      }
    } finally {
      this.#admitting.delete(slot)
    }
    const beside = this.#admitted.size > 0
    this.#admitted.set(slot, estimate)
    return { seq: ++this.#loadSeq, beside }
  }

  /**
   * Evicts for `missing()` bytes. Loads waiting together would each evict for the same missing
   * bytes: what the others are evicting right now counts as freed already.
   */
  async #makeRoom(loading: string, missing: () => number): Promise<number> {
    const bytes = missing() - this.#evicting
    if (bytes <= 0) {
      // Others are evicting enough: look again once they are done.
      if (this.#evictions.size > 0) await Promise.allSettled([...this.#evictions])
      return 1
    }
    this.#evicting += bytes
    const run = this.#room.evictFor(bytes, loading)
    this.#evictions.add(run)
    try {
      return await run
    } finally {
      this.#evicting -= bytes
      this.#evictions.delete(run)
    }
  }

  /**
   * An admitted load ended (`measured`: what it added and whether the reading is clean; null when it
   * failed or its mode measures exactly). Returns the estimate to keep for the extension.
   */
  loaded(slot: Slot, token: AdmissionToken, measured: LoadMeasure | null): number | null {
    this.#admitted.delete(slot)
    this.#wake()
    if (measured === null) return slot.heapGrowth
    // Shrunk by what a GC freed meanwhile: it only says the load added at least this much.
    if (measured.collected && measured.bytes <= (slot.heapGrowth ?? 0)) return slot.heapGrowth
    if (measured.collected && slot.heapGrowth === null && measured.bytes === 0) return null
    // The executor knows whether its own reading is clean; otherwise, any load admitted beside it blurs it.
    const beside = measured.clean !== null ? !measured.clean : token.beside || token.seq !== this.#loadSeq || this.#admitted.size > 0
    // A clean measurement (no other load beside it) replaces the blurred ones, which then stop
    // counting; the estimate is the median of the last few, so one reading shrunk by a GC in the
    // middle or swollen by another load's allocations does not swing it.
    const samples = slot.growthSamples
    if (beside && slot.cleanSamples > 0) return slot.heapGrowth
    if (!beside && slot.cleanSamples++ === 0) samples.length = 0
    samples.push(measured.bytes)
    if (samples.length > GROWTH_SAMPLES) samples.shift()
    return median(samples)
  }

  /** What a load of `slot` is expected to add: its estimate, else the average of the others'. */
  estimateOf(slot: Slot): number {
    return slot.heapGrowth ?? this.averageGrowth()
  }

  averageGrowth(): number {
    let sum = 0, n = 0
    for (const s of this.#slots()) if (s.heapGrowth) { sum += s.heapGrowth; n++ }
    return n ? sum / n : 0
  }

  /** A request ended or a load finished: loads waiting for room look again. */
  wake(): void {
    if (this.#wakers.length > 0) this.#wake()
  }

  #wake(): void {
    const w = this.#wakers
    this.#wakers = []
    for (const f of w) f()
  }

  /** Resolves at the next wake(), or after `ms`. */
  nextRelease(ms: number): Promise<void> { return this.#nextRelease(ms) }

  #nextRelease(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms)
      this.#wakers.push(() => { clearTimeout(t); resolve() })
    })
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
