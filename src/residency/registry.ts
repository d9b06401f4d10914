import { performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { findEntry } from '../loader/discover.ts'
import type { Logger as PinoLogger } from 'pino'
import { modeOf, type Mode } from '../config/modes.ts'
import type { Executors } from '../modes/executors.ts'
import type { UnloadReason } from '../sdk/types.ts'
import type { ModeProcess } from '../modes/processes.ts'
import { Generation } from './generation.ts'
import { Slot } from './slot.ts'
import { CollectionWatcher } from './collection.ts'
import { jsBytes } from './memory.ts'
import { Evictor } from './eviction.ts'
import { handOverState, loadFailure } from './load-outcome.ts'
import { RegistryEvents, type RegistryEvent } from './events.ts'

export { Slot, type SlotState } from './slot.ts'
/** What an advisory (idle or memory) unload did. */
export type AdvisoryResult = 'unloaded' | 'busy' | 'declined' | 'none'

export type { RegistryEvent } from './events.ts'

export interface RegistryOptions {
  config: ResidentConfig
  /** One executor per mode; each extension's generations load through the one its mode names. */
  executors: Executors
  log: PinoLogger
}

/**
 * The table of extensions: loads on first use (one load shared by concurrent first requests),
 * keeps generations resident, and retires them reference-counted: a retired generation is disposed
 * when its last request releases it, or after the drain timeout.
 */
export class Registry {
  readonly slots = new Map<string, Slot>()
  readonly #config: ResidentConfig
  readonly #executors: Executors
  readonly #log: PinoLogger
  /** Proves retired generations were collected. */
  readonly collection: CollectionWatcher
  /** Idle and memory-pressure eviction. */
  readonly evictor: Evictor
  #closing = false
  readonly #events: RegistryEvents

  constructor(o: RegistryOptions) {
    this.#config = o.config
    this.#executors = o.executors
    this.#log = o.log
    this.#events = new RegistryEvents(o.log)
    this.collection = new CollectionWatcher({
      grace: o.config.unload.collectionGrace, log: o.log,
      onLeak: (name) => { const slot = this.slots.get(name); if (slot) slot.leaksSuspected++ },
    })
    this.evictor = new Evictor(this, o.config, o.log)
    this.evictor.start()
  }

  /** The default mode (the config's top-level `mode`). */
  get mode(): Mode { return this.#config.mode }

  /** The mode `name` runs in: its current generation's, or the one its next load would use. */
  modeOf(name: string): Mode {
    return this.slots.get(name)?.current?.module.mode ?? modeOf(this.#config, name)
  }

  /** The worker/pool processes of an out-of-process mode (none in process), for the dashboard. */
  processes(): ModeProcess[] { return this.#executors.processes() }

  /** Calls `fn` on every install and removal (the hot-reload watcher follows loads this way). Returns an unsubscribe. */
  subscribe(fn: (e: RegistryEvent) => void): () => void {
    return this.#events.add(fn)
  }

  /** The idle timeout that applies to `name`, in ms (0 = never). */
  idleTimeoutOf(name: string): number {
    return this.#config.extensions[name]?.idleTimeout ?? this.#config.idleTimeout
  }

  /**
   * The current generation of `name`, loaded if need be, with a request lease taken on it;
   * null when there is no such extension. Pair every non-null result with release().
   * An extension marked failed by rapid-fail protection rejects with a 503 and Retry-After.
   */
  async acquire(name: string): Promise<Generation | null> {
    return this.tryAcquire(name) ?? this.#acquireSlow(name)
  }

  /** The extension's entry: its npm package (`extensions.<name>.package`), else its file in extensionsDir. */
  async #entryOf(name: string): Promise<string | null> {
    return this.#config.extensions[name]?.entry ?? await findEntry(this.#config.extensionsDir, name)
  }

  /** The fast path of acquire(): a lease on the resident generation, or null when it must load. */
  tryAcquire(name: string): Generation | null {
    const slot = this.slots.get(name)
    const ready = slot?.current
    return ready ? this.#lease(slot!, ready) : null
  }

  async #acquireSlow(name: string): Promise<Generation | null> {
    let slot = this.slots.get(name)
    if (!slot?.loading) {
      const entry = await this.#entryOf(name)
      if (!entry) {
        if (slot && !slot.current && !slot.loading && slot.draining.size === 0) this.slots.delete(name)
        return null
      }
      slot = this.slots.get(name) ?? new Slot(name, entry, this.#config.rapidFail)
      this.slots.set(name, slot)
      slot.entry = entry
      if (slot.current) return this.#lease(slot, slot.current)
      if (!slot.loading) {
        if (slot.rapid.blockedFor() > 0) throw slot.rapid.error(name, this.#config.development ? slot.lastError?.message : undefined)
        this.#startLoad(slot)
      }
    }
    // Counted until leased: between the load resolving and this lease, the new generation has no
    // request in flight yet, and eviction must not take it.
    slot.waiting++
    try {
      const gen = await slot.loading!
      return this.#lease(slot, gen)
    } finally {
      slot.waiting--
    }
  }

  /**
   * Ends a lease taken by acquire(). `startedAt` (`performance.now()` when the request began)
   * records how long it held the lease, for the status latencies, and `status` the response's
   * status for the metrics. Returns that duration in ms (0 without `startedAt`).
   */
  release(gen: Generation, startedAt?: number, status = 200): number {
    const slot = this.slots.get(gen.name)
    let ms = 0
    if (slot) {
      slot.inFlight--
      // Idle time counts from the end of the last request, not its start.
      const now = performance.now()
      slot.lastUsed = now
      if (startedAt !== undefined) {
        ms = now - startedAt
        slot.latency.add(ms)
        slot.stats.record(ms, status)
      }
    }
    gen.release()
    return ms
  }

  #lease(slot: Slot, gen: Generation): Generation {
    slot.requestsTotal++
    slot.inFlight++
    return gen.acquire()
  }

  #startLoad(slot: Slot): void {
    this.evictor.beforeLoad(slot)
    const buildStartedAt = Date.now()
    const p = this.#instantiate(slot).then((gen) => {
      slot.current = gen
      this.#events.emit({ type: 'installed', name: slot.name, generation: gen, buildStartedAt })
      return gen
    }).finally(() => {
      if (slot.loading === p) slot.loading = null
    })
    slot.loading = p
    p.catch(() => { /* reported to each waiting request */ })
  }

  /** Forgets rapid-fail state, so the next acquire() tries to load at once (the admin /load action). */
  resetFailure(name: string): void {
    this.slots.get(name)?.rapid.recordSuccess()
  }

  /** Builds, evaluates and initialises a new generation of `slot`; does not install it. */
  async #instantiate(slot: Slot, reloading = false): Promise<Generation> {
    if (this.#closing) throw new ResidentError('RES_ERR_UNAVAILABLE')
    const id = slot.nextGeneration++
    const log = this.#log.child({ extension: slot.name, generation: id })
    const started = performance.now()
    const before = jsBytes()
    try {
      const executor = this.#executors.get(modeOf(this.#config, slot.name))
      const module = await executor.load({
        name: slot.name, entry: slot.entry, generation: id,
        config: this.#config.extensions[slot.name]?.config ?? {}, log, development: this.#config.development,
      })
      slot.lastError = null
      slot.rapid.recordSuccess()
      slot.loadMs = Math.round((performance.now() - started) * 100) / 100
      // A mode that measures exactly (a worker's isolate) says so; in process only the growth shows.
      slot.heapGrowth = module.memory ? null : Math.max(0, jsBytes() - before)
      log.info({ ms: Math.round(slot.loadMs), mode: module.mode, commands: Object.values(module.table.commands).map((c) => c.name) }, `loaded ${slot.name} (generation ${id})`)
      this.evictor.afterLoad()
      return new Generation(id, slot.name, module)
    } catch (e) {
      throw loadFailure(slot, e, { log, reloading, development: this.#config.development })
    }
  }

  /**
   * Loads a new generation beside the current one and switches to it only once it initialised;
   * in-flight requests finish on the old one, which is then disposed. A failure leaves the old
   * generation serving and rejects.
   */
  reload(name: string): Promise<Generation> {
    let slot = this.slots.get(name)
    if (!slot) {
      // Not loaded yet: a reload is then simply its first load (the admin API and watchers rely on it).
      slot = new Slot(name, '')
      this.slots.set(name, slot)
    }
    const s = slot
    return this.#serialise(s, async () => {
      // A first load still running would install itself after us and win; let it finish first.
      if (s.loading) await s.loading.catch(() => undefined)
      const entry = await this.#entryOf(name)
      if (!entry) {
        if (!s.current && !s.loading && this.slots.get(name) === s) this.slots.delete(name)
        throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${name}"`)
      }
      s.entry = entry
      const prev = s.current
      const buildStartedAt = Date.now()
      const next = await this.#instantiate(s, true)
      await handOverState(s, prev, next, { log: this.#log, discard: (g) => this.retire(s, g, 'reload') })
      s.current = next
      this.#events.emit({ type: 'installed', name, generation: next, buildStartedAt })
      if (prev) void this.retire(s, prev, 'reload')
      return next
    })
  }

  /** Takes the current generation out of service and disposes it once drained (a must-unload). */
  unload(name: string, reason: UnloadReason): Promise<boolean> {
    const slot = this.slots.get(name)
    if (!slot) return Promise.resolve(false)
    return this.#serialise(slot, async () => {
      if (slot.loading) await slot.loading.catch(() => undefined)
      const gen = slot.current
      if (!gen) return false
      slot.current = null
      this.#events.emit({ type: 'removed', name })
      await this.retire(slot, gen, reason)
      return true
    })
  }

  /**
   * An advisory unload (idle, memory): never touches a generation with a request in flight, and asks
   * the extension's canUnload(), which may decline `unload.maxDeclines` times before it is forced.
   * Resolves once the generation is out of service (its disposal continues in the background).
   */
  unloadIfIdle(name: string, reason: 'idle' | 'memory'): Promise<AdvisoryResult> {
    const slot = this.slots.get(name)
    if (!slot) return Promise.resolve('none')
    return this.#serialise(slot, async () => {
      const gen = slot.current
      if (!gen || slot.loading) return 'none'
      if (gen.inflight > 0 || slot.waiting > 0) return 'busy'
      const willing = await gen.module.canUnload(reason)
      // Asking took a turn (or a message to a worker): a request may have leased it meanwhile.
      if (slot.current !== gen || gen.inflight > 0 || slot.waiting > 0 || slot.loading) return 'busy'
      if (!willing) {
        if (slot.declines < this.#config.unload.maxDeclines) {
          slot.declines++
          this.#log.info({ extension: name, generation: gen.id, reason, declines: slot.declines }, `${name} declined a ${reason} unload (${slot.declines} of ${this.#config.unload.maxDeclines})`)
          return 'declined'
        }
        this.#log.warn({ extension: name, generation: gen.id, reason }, `${name} declined ${slot.declines} ${reason} unloads; unloading it anyway`)
      }
      slot.current = null
      this.#events.emit({ type: 'removed', name })
      void this.retire(slot, gen, reason)
      return 'unloaded'
    })
  }

  #serialise<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    const run = slot.chain.then(fn, fn)
    slot.chain = run.catch(() => undefined)
    return run
  }

  /**
   * Retires a generation: waits for its requests (up to drainTimeout), then disposes it and watches
   * for its collection. Every retirement, whatever the reason, ends up in `slot.retired`.
   */
  retire(slot: Slot, gen: Generation, reason: UnloadReason): Promise<void> {
    if (gen.disposed) return gen.disposed
    gen.retired = reason
    slot.declines = 0
    slot.draining.add(gen)
    gen.disposed = (async () => {
      if (!await gen.drained(this.#config.drainTimeout)) {
        this.#log.warn({ extension: gen.name, generation: gen.id, inflight: gen.inflight }, `generation ${gen.id} of ${gen.name} did not drain within ${this.#config.drainTimeout} ms; disposing it anyway`)
      }
      try {
        await gen.module.dispose(reason)
      } finally {
        slot.draining.delete(gen)
        this.collection.watch(slot.name, gen.module.sentinel, slot.recordRetired(gen.id, reason))
        this.#log.info({ extension: gen.name, generation: gen.id, reason }, `unloaded ${gen.name} (generation ${gen.id}, ${reason})`)
      }
    })()
    return gen.disposed
  }

  /** Shutdown: stop loading and evicting, drain and dispose every generation. */
  async close(): Promise<void> {
    this.#closing = true
    this.evictor.stop()
    const pending: Promise<unknown>[] = []
    for (const slot of this.slots.values()) {
      pending.push(this.#serialise(slot, async () => {
        if (slot.loading) await slot.loading.catch(() => undefined)
        const gen = slot.current
        slot.current = null
        if (gen) await this.retire(slot, gen, 'shutdown')
      }))
    }
    await Promise.allSettled(pending)
    this.collection.close()
    await this.#executors.close()
  }
}
