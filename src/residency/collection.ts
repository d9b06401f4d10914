import v8 from 'node:v8'
import vm from 'node:vm'
import type { Logger, UnloadReason } from '../sdk/types.ts'

/** What status shows of one retired generation. */
export interface RetiredRecord {
  generation: number
  reason: UnloadReason
  at: Date
  /** true once finalized; false when the grace period (and a forced GC) passed without it; null while waiting. */
  collected: boolean | null
}

type GcFunction = (options?: { type: 'minor' | 'major' }) => void
let gcFn: GcFunction | null | undefined
/**
 * Full GCs Resident forced, and the time they took (they block the event loop): to judge eviction
 * rounds, to collect retired generations a load waits for (admission), to prove collection.
 */
export const forcedGc = { count: 0, ms: 0, eviction: 0, admission: 0, collection: 0, lastAt: 0 }

/**
 * A full GC when one can be forced: `--expose-gc`, or else enabling the flag at run time and
 * fetching `gc` from a fresh context (works on Node 20; null if V8 refuses).
 */
export function forceGc(why: 'eviction' | 'admission' | 'collection'): boolean {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: GcFunction }).gc
    if (typeof g === 'function') gcFn = g
    else {
      try {
        v8.setFlagsFromString('--expose-gc')
        const f = vm.runInNewContext('gc') as unknown
        gcFn = typeof f === 'function' ? (f as GcFunction) : null
      } catch { gcFn = null }
    }
  }
  if (!gcFn) return false
  const t0 = performance.now()
  gcFn()
  // V8 frees the ArrayBuffers a full GC found dead on another thread, milliseconds later, and
  // finishes that at the start of its next GC: a scavenge (a fraction of a millisecond) makes it
  // finish now, so a reading taken next shows the memory back.
  gcFn({ type: 'minor' })
  forcedGc.count++
  forcedGc[why]++
  forcedGc.ms += performance.now() - t0
  forcedGc.lastAt = Date.now()
  return true
}

const LEAK_HINT = 'retained after unload — leak suspected: something outside the extension still references its code. ' +
  'Usual causes: timers made with the global setTimeout/setInterval instead of this.host, listeners added to process, ' +
  'emitters or shared modules and never removed, values stored on globalThis or in a shared package\'s cache.'

export interface CollectionOptions {
  /** How long after an unload the generation must be collected, in ms. */
  grace: number
  log: Logger
  /** Called when a generation is reported retained. */
  onLeak?: (name: string, generation: number) => void
}

/**
 * Proves retired generations were collected: a FinalizationRegistry on each generation's sentinel
 * (the extension class: its module scope keeps it alive through any leaked closure, unlike the
 * instance or the exports object), checked after a grace period and a forced GC.
 */
export class CollectionWatcher {
  readonly #o: CollectionOptions
  // Keyed by a number of its own per watch: name + generation is not unique, since an extension
  // deleted and added again starts over at generation 1 while its old generations may be pending.
  readonly #pending = new Map<number, { record: RetiredRecord; name: string; timer: NodeJS.Timeout }>()
  readonly #finalizer = new FinalizationRegistry<number>((key) => this.#collected(key))
  #nextKey = 1
  #closed = false
  /** Totals since start: generations watched, proved collected, reported retained (a late collection moves one back). */
  readonly totals = { watched: 0, collected: 0, retained: 0 }
  /** The same per extension name (for the per-extension metric). */
  readonly byName = new Map<string, { watched: number; collected: number; retained: number }>()

  constructor(o: CollectionOptions) {
    this.#o = o
  }

  /** Starts watching; `record.collected` is updated in place. Without a sentinel nothing can be proved. */
  watch(name: string, sentinel: object | null, record: RetiredRecord): void {
    if (!sentinel) return
    const key = this.#nextKey++
    this.#finalizer.register(sentinel, key)
    const timer = setTimeout(() => this.#check(key), this.#o.grace)
    timer.unref()
    this.#pending.set(key, { record, name, timer })
    this.totals.watched++
    this.#of(name).watched++
  }

  #of(name: string): { watched: number; collected: number; retained: number } {
    let t = this.byName.get(name)
    if (t === undefined) { t = { watched: 0, collected: 0, retained: 0 }; this.byName.set(name, t) }
    return t
  }

  /** Generations still awaiting their verdict (collected === null). */
  get waiting(): number {
    let n = 0
    for (const p of this.#pending.values()) if (p.record.collected === null) n++
    return n
  }

  #collected(key: number): void {
    const p = this.#pending.get(key)
    if (!p) return
    clearTimeout(p.timer)
    this.#pending.delete(key)
    this.totals.collected++
    const mine = this.#of(p.name)
    mine.collected++
    if (p.record.collected === false) {
      this.totals.retained--
      mine.retained--
      this.#o.log.info({ extension: p.name, generation: p.record.generation }, `generation ${p.record.generation} of ${p.name} was collected after all`)
    }
    p.record.collected = true
  }

  #check(key: number): void {
    if (this.#closed || !this.#pending.has(key)) return
    // One full GC after the retirement is enough to judge, so checks falling due together share one.
    const p = this.#pending.get(key)!
    if (forcedGc.lastAt <= p.record.at.getTime()) forceGc('collection')
    // Finalization callbacks run as tasks after the GC, so give them a turn before judging.
    setImmediate(() => setTimeout(() => {
      const p = this.#pending.get(key)
      if (!p || this.#closed || p.record.collected !== null) return
      p.record.collected = false
      this.totals.retained++
      this.#of(p.name).retained++
      this.#o.log.warn({ extension: p.name, generation: p.record.generation, reason: p.record.reason },
        `${p.name} generation ${p.record.generation} ${LEAK_HINT}`)
      this.#o.onLeak?.(p.name, p.record.generation)
      // Keep listening: a late collection still flips it to true.
    }, 20).unref())
  }

  close(): void {
    this.#closed = true
    for (const p of this.#pending.values()) clearTimeout(p.timer)
  }
}
