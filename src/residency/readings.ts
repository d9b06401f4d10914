import { PerformanceObserver, constants as perf, performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import { rssBytes } from '../modes/proc.ts'
import type { ModeProcess } from '../modes/processes.ts'
import { forceGc } from './collection.ts'
import { discounted, sampleMemory, type MemorySample } from './memory.ts'

/** How long one reading of memory serves the checks that follow it (ms). */
const RAW_TTL = 2

/**
 * Memory as eviction and admission read it: one reading shared for a moment, the peak, and the
 * bytes of evicted or retired generations that no major GC has freed yet (credits), which count as
 * freed until one has; plus the forced GCs that free them.
 */
export class MemoryReadings {
  readonly #config: ResidentConfig
  readonly #processes: () => Iterable<ModeProcess>
  /**
   * Bytes evicted (by estimate) that no major GC has reclaimed yet. Readings subtract them, so that
   * one eviction is not repeated while V8 gets round to freeing it; a forced GC clears them, or the
   * second major GC V8 runs by itself.
   */
  #credits: Array<{ at: number; bytes: number; majors: number }> = []
  #gcObserver: PerformanceObserver | null = null
  #collecting: Promise<void> | null = null
  /** The last raw reading (see pressure()); null once something changed memory. */
  #raw: { at: number; budget: number | null; s: MemorySample } | null = null
  #stopped = false
  /** When collectNow() last forced a GC (monotonic ms). */
  collectedAt = -Infinity
  /** Peak RSS seen at any reading, and the last sample. */
  peakRss = 0
  last: MemorySample | null = null

  constructor(config: ResidentConfig, processes: () => Iterable<ModeProcess>) {
    this.#config = config
    this.#processes = processes
  }

  get credited(): boolean { return this.#credits.length > 0 }

  stop(): void {
    this.#stopped = true
    this.#unwatchGc()
  }

  /** Something changed memory (a load ended): the next reading is taken afresh. */
  changed(): void {
    this.#raw = null
  }

  /**
   * Evicted bytes count as freed until the next major GC after the eviction. Watching GCs costs
   * something on every scavenge, so the observer runs only while such credits are outstanding.
   */
  credit(bytes: number): void {
    this.#credits.push({ at: performance.now(), bytes, majors: 0 })
    if (this.#gcObserver !== null || this.#stopped) return
    this.#gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        // Only what was evicted before this GC started can have been reclaimed by it.
        if (!(((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0) & perf.NODE_PERFORMANCE_GC_MAJOR)) continue
        // A GC V8 ran by itself may have marked (incrementally, concurrently) from before the
        // eviction, and kept what died meanwhile; the second one after it cannot have.
        for (const c of this.#credits) if (e.startTime > c.at) c.majors++
      }
      this.#credits = this.#credits.filter((c) => c.majors < 2)
      if (this.#credits.length === 0) this.#unwatchGc()
    })
    this.#gcObserver.observe({ entryTypes: ['gc'] })
  }

  /** A forced GC (marking afresh) that started at `gcStart` (performance.now() time) freed what was credited before it. */
  #uncredit(gcStart: number): void {
    this.#credits = this.#credits.filter((c) => c.at >= gcStart)
    if (this.#credits.length === 0) this.#unwatchGc()
  }

  #unwatchGc(): void {
    this.#gcObserver?.disconnect()
    this.#gcObserver = null
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
    for (const p of this.#processes()) if (p.pid !== null) n += rssBytes(p.pid)
    return n
  }

  /** A sample with evicted-but-not-yet-collected bytes discounted. */
  pressure(): MemorySample {
    let credit = 0
    for (const c of this.#credits) credit += c.bytes
    const now = performance.now()
    // Loads waiting for room look many times a millisecond: one reading (RSS, the cgroup's files,
    // the modes' processes) serves them all for RAW_TTL, unless a load ended or a GC ran since.
    if (this.#raw === null || now - this.#raw.at > RAW_TTL || this.#raw.budget !== this.#config.memory.budget) {
      const s = sampleMemory(this.#config.memory.budget, true, 0, this.#processesRss())
      this.#raw = { at: now, budget: this.#config.memory.budget, s }
      if (s.rss > this.peakRss) this.peakRss = s.rss
    }
    const s = discounted(this.#raw.s, credit)
    this.last = s
    return s
  }

  /**
   * One full GC, for a load that fits only on the credit of evicted bytes not collected yet (the
   * process would pass the limit itself if it loaded before they are freed). Shared by every load
   * asking meanwhile; run from its own turn of the event loop, not inside a request's call. The GC
   * frees the dead Buffers' memory before it returns (forceGc), so the next reading shows it and
   * nothing more is evicted for it.
   */
  collect(): Promise<void> {
    this.#collecting ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        try {
          if (!this.#stopped) this.#collectNow('admission')
        } finally {
          this.#collecting = null
          resolve()
        }
      })
    })
    return this.#collecting
  }

  /** Forces a full GC now (when possible), so the reading it returns shows what evictions freed. */
  collectNow(): MemorySample {
    this.#collectNow('eviction')
    return this.pressure()
  }

  #collectNow(why: 'admission' | 'eviction'): void {
    const startedAt = performance.now()
    if (!forceGc(why)) return
    this.collectedAt = performance.now()
    this.#raw = null
    // What it freed is no longer credited. The GC observer would say so only later, after a
    // reading that would discount the bytes a second time.
    this.#uncredit(startedAt)
  }

  limitOf(s: MemorySample): number {
    return s.signal === 'rss' ? s.budget! : s.signal === 'cgroup' ? s.cgroup!.limit : s.heapLimit
  }
}
