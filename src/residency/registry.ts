import { performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError, isResidentError } from '../errors.ts'
import { findEntry, listModules } from '../loader/discover.ts'
import { isHttpError } from '../sdk/http-error.ts'
import type { Logger as PinoLogger } from 'pino'
import { modeOf, type Mode } from '../config/modes.ts'
import type { Executors } from '../modes/executors.ts'
import type { UnloadReason } from '../sdk/types.ts'
import { listProcesses, type ModeProcess } from '../modes/processes.ts'
import { Generation } from './generation.ts'
import { Slot } from './slot.ts'
import { CollectionWatcher } from './collection.ts'
import { jsBytes } from './memory.ts'
import { Evictor } from './eviction.ts'
import { handOverState, loadFailure, stateOf, type StateSource } from './load-outcome.ts'
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
  /** The number of every extension's first generation (see numberFrom). */
  #firstGeneration = 1
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

  /**
   * The threads and processes of the out-of-process modes (none in process), for the dashboard:
   * those an executor shares between generations, and each live generation's own (a worker pool,
   * a FastCGI pool), the draining ones included while they finish.
   */
  processes(): ModeProcess[] {
    const out = this.#executors.processes()
    for (const slot of this.slots.values()) {
      for (const gen of [...(slot.current ? [slot.current] : []), ...slot.draining]) {
        const list = listProcesses(gen.module)
        for (const p of list) out.push({ ...p, extension: p.extension ?? slot.name, generation: gen.id })
      }
    }
    return out
  }

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
        this.#forget(name)
        return null
      }
      slot = this.#slot(name, entry)
      slot.entry = entry
    }
    // A load resolves with the generation it installed, but an unload or a reload queued behind it
    // may take that one out of service before this continuation runs: lease only what is current,
    // and load again otherwise (a few times at most; each round is another operator action).
    for (let attempt = 0; attempt < 4; attempt++) {
      if (slot.current) return this.#lease(slot, slot.current)
      if (this.#closing) break
      if (!slot.loading && slot.rapid.blockedFor() > 0) throw slot.rapid.error(name, this.#config.development ? slot.lastError?.message : undefined)
      // Counted until leased: between the load resolving and this lease, the new generation has no
      // request in flight yet, and eviction must not take it.
      slot.waiting++
      try {
        await this.#load(slot)
      } finally {
        slot.waiting--
      }
    }
    throw new ResidentError('RES_ERR_UNAVAILABLE', `extension "${name}" was unloaded while this request waited for it`)
  }

  /**
   * Numbers every extension's first generation `n` from now on. An fcgi-worker that Resident's
   * fastcgi mode manages runs one generation of its host's, and takes the host's number for it, so
   * `this.host.generation` reads the same in every mode.
   */
  numberFrom(n: number): void { this.#firstGeneration = n }

  /** The slot of `name`, made with the configured settings if there is none yet. */
  #slot(name: string, entry: string): Slot {
    let slot = this.slots.get(name)
    if (!slot) {
      slot = new Slot(name, entry, this.#config.rapidFail)
      slot.nextGeneration = this.#firstGeneration
      this.slots.set(name, slot)
    }
    return slot
  }

  /** Drops the slot of an extension whose file is gone, once nothing of it is alive. */
  #forget(name: string): void {
    const slot = this.slots.get(name)
    if (slot?.idle) this.slots.delete(name)
  }

  /**
   * Every extension on disk gets a slot (state `unloaded` until its first request), so status lists
   * them all; slots of extensions whose files are gone are dropped once nothing of them is alive.
   */
  async discover(): Promise<void> {
    const names = await listModules(this.#config.extensionsDir)
    const found = new Set(names)
    for (const name of names) if (!this.slots.has(name)) this.#slot(name, '')
    for (const [name, slot] of this.slots) if (!found.has(name) && slot.idle && !slot.entry) this.slots.delete(name)
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
    this.evictor.released()
    return ms
  }

  /**
   * A request answered (504) while its command still runs: its lease ends (the caller releases it),
   * so the generation can be retired at once; the command is counted as abandoned until it settles.
   */
  abandon(gen: Generation, running: Promise<unknown>): void {
    gen.abandoned++
    const settled = () => { gen.abandoned-- }
    running.then(settled, settled)
  }

  /** Counts a failure answered for `name` (5xx only: a client's mistake is not the extension's). */
  recordFailure(name: string, e: unknown, requestId: string | null): void {
    const f = failureOf(e)
    if (f.status < 500) return
    const slot = this.slots.get(name)
    if (!slot) return
    slot.errors++
    // The 500 of a failed load: the load's own message (already recorded) says more than the
    // client's, so keep it and note which request it answered.
    const prev = slot.lastError
    if (f.code === 'RES_ERR_LOAD_FAILED' && prev?.code === f.code && prev.requestId === null) {
      prev.requestId = requestId
      return
    }
    slot.lastError = { code: f.code, message: f.message, at: new Date(), requestId }
  }

  #lease(slot: Slot, gen: Generation): Generation {
    slot.requestsTotal++
    return gen.acquire()
  }

  /**
   * The first load of `slot` (shared by every request waiting for it). It runs in the slot's
   * serial chain, like reloads and unloads, so two loads can never both install.
   */
  #load(slot: Slot): Promise<Generation> {
    if (slot.loading) return slot.loading
    const p: Promise<Generation> = this.#serialise(slot, async () => {
      // Something installed meanwhile (a reload queued first): that is the load we wanted.
      if (slot.current) return slot.current
      const buildStartedAt = Date.now()
      const gen = await this.#instantiate(slot)
      this.#install(slot, gen, buildStartedAt)
      return gen
    }).finally(() => {
      if (slot.loading === p) slot.loading = null
    })
    slot.loading = p
    p.catch(() => { /* reported to each waiting request */ })
    return p
  }

  /**
   * The one place a generation goes into service: the one it replaces is retired, always. Only ever
   * called from the slot's serial chain. During shutdown the new one is retired instead.
   */
  #install(slot: Slot, gen: Generation, buildStartedAt: number): void {
    slot.loadingGens.delete(gen)
    if (this.#closing) {
      void this.retire(slot, gen, 'shutdown')
      throw new ResidentError('RES_ERR_UNAVAILABLE')
    }
    const prev = slot.current
    gen.state = 'current'
    slot.current = gen
    this.#events.emit({ type: 'installed', name: slot.name, generation: gen, buildStartedAt })
    if (prev) void this.retire(slot, prev, 'reload')
  }

  /** Forgets rapid-fail state, so the next acquire() tries to load at once (the admin /load action). */
  resetFailure(name: string): void {
    this.slots.get(name)?.rapid.recordSuccess()
  }

  /** Builds, evaluates and initialises a new generation of `slot`; it is `loading` until installed or retired. */
  async #instantiate(slot: Slot, reloading = false): Promise<Generation> {
    if (this.#closing) throw new ResidentError('RES_ERR_UNAVAILABLE')
    const id = slot.nextGeneration++
    const log = this.#log.child({ extension: slot.name, generation: id })
    // Waits (bounded) for room under the limit; loadMs covers the load itself.
    const admitted = await this.evictor.admit(slot)
    const started = performance.now()
    const before = jsBytes()
    let module
    try {
      const executor = this.#executors.get(modeOf(this.#config, slot.name))
      module = await executor.load({
        name: slot.name, entry: slot.entry, generation: id,
        config: this.#config.extensions[slot.name]?.config ?? {}, log, development: this.#config.development,
      })
    } catch (e) {
      this.evictor.loaded(slot, admitted, null)
      const error = loadFailure(slot, e, { log, reloading, development: this.#config.development })
      this.#events.emit({ type: 'failed', name: slot.name, entry: slot.entry, error })
      throw error
    }
    const gen = new Generation(id, slot.name, module)
    slot.createdTotal++
    slot.loadingGens.add(gen)
    if (slot.lastError?.code === 'RES_ERR_LOAD_FAILED') slot.lastError = null
    slot.rapid.recordSuccess()
    slot.loadMs = Math.round((performance.now() - started) * 100) / 100
    // A mode that measures exactly (a worker's isolate) says so; in process only the growth shows.
    // The executor's own figure when it has one (in process: around evaluation and init() only,
    // not the build, during which other loads run); else the growth around the whole load.
    const growth = module.memory ? null : module.loadGrowth ?? { bytes: Math.max(0, jsBytes() - before), clean: null, collected: false }
    const kept = this.evictor.loaded(slot, admitted, growth)
    slot.heapGrowth = module.memory ? null : kept
    log.info({ ms: Math.round(slot.loadMs), mode: module.mode, commands: Object.values(module.table.commands).map((c) => c.name) }, `loaded ${slot.name} (generation ${id})`)
    return gen
  }

  /**
   * Loads a new generation beside the current one and switches to it only once it initialised;
   * in-flight requests finish on the old one, which is then disposed. A failure leaves the old
   * generation serving and rejects. A reload means "try now": it clears rapid-fail protection.
   */
  reload(name: string): Promise<Generation> {
    // Not loaded yet: a reload is then simply its first load (the admin API and watchers rely on it).
    const s = this.#slot(name, '')
    s.rapid.recordSuccess()
    return this.#serialise(s, async () => {
      const entry = await this.#entryOf(name)
      if (!entry) {
        this.#forget(name)
        throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${name}"`)
      }
      s.entry = entry
      const prev = s.current
      const buildStartedAt = Date.now()
      // No room for two generations: the old one leaves first and requests wait for the new one.
      const from = (prev && this.evictor.noRoomBeside(s) ? await this.#replaceWithoutOverlap(s, prev) : null) ?? stateOf(prev)
      const next = await this.#instantiate(s, true)
      await handOverState(s, from, next, { log: this.#log, discard: (g) => this.retire(s, g, 'reload') })
      this.#install(s, next, buildStartedAt)
      return next
    })
  }

  /**
   * Takes `prev` out of service for a reload that has no room beside it: its state is exported
   * first (the hand-over then carries it), new requests wait in the chain for the new generation,
   * and it is drained and disposed before the new one is built. Returns where the state comes from,
   * or null (keep overlapping) when exporting it failed.
   */
  async #replaceWithoutOverlap(slot: Slot, prev: Generation): Promise<StateSource | null> {
    let exported: unknown
    try {
      exported = prev.module.exportState ? await prev.module.exportState() : undefined
    } catch (e) {
      this.#log.warn({ extension: slot.name, err: e }, `${slot.name} could not export its state: reloading beside generation ${prev.id}, over the memory limit`)
      return null
    }
    if (slot.current !== prev) return null
    this.#log.info({ extension: slot.name, generation: prev.id }, `reloading ${slot.name} without overlap: no room under the memory limit for two generations`)
    slot.current = null
    slot.reloadsWithoutOverlap++
    this.#events.emit({ type: 'removed', name: slot.name })
    await this.retire(slot, prev, 'reload')
    return { id: prev.id, serving: false, exportState: prev.module.exportState ? () => exported : undefined }
  }

  /** Takes the current generation out of service and disposes it once drained (a must-unload). */
  async unload(name: string, reason: UnloadReason): Promise<boolean> {
    const slot = this.slots.get(name)
    if (!slot) return false
    // Out of service inside the chain; the drain is awaited outside it, so a request arriving
    // meanwhile loads a fresh generation at once instead of waiting for the old one's requests.
    const out = await this.#serialise(slot, async () => {
      const gen = slot.current
      if (!gen) return null
      slot.current = null
      this.#events.emit({ type: 'removed', name })
      return { disposed: this.retire(slot, gen, reason) }
    })
    if (!out) return false
    await out.disposed
    return true
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
      // canUnload() may have let a request in (it is the extension's code): check again.
      if (gen.inflight > 0 || slot.current !== gen) return 'busy'
      slot.current = null
      this.#events.emit({ type: 'removed', name })
      void this.retire(slot, gen, reason)
      return 'unloaded'
    })
  }

  #serialise<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    slot.chained++
    const run = slot.chain.then(fn, fn).finally(() => { slot.chained-- })
    slot.chain = run.catch(() => undefined)
    return run
  }

  /**
   * Retires a generation, exactly once: waits for its requests (up to `drainMs`), then disposes it
   * and watches for its collection. Every retirement, whatever the reason, ends in `slot.retired`.
   */
  retire(slot: Slot, gen: Generation, reason: UnloadReason, drainMs = this.#config.drainTimeout): Promise<void> {
    if (gen.disposed) return gen.disposed
    gen.retired = reason
    gen.state = 'draining'
    slot.declines = 0
    slot.loadingGens.delete(gen)
    slot.draining.add(gen)
    gen.disposed = (async () => {
      if (!await gen.drained(drainMs)) {
        this.#log.warn({ extension: gen.name, generation: gen.id, inflight: gen.inflight }, `generation ${gen.id} of ${gen.name} did not drain within ${drainMs} ms; disposing it anyway`)
      }
      try {
        await gen.module.dispose(reason)
      } catch (e) {
        this.#log.error({ extension: gen.name, generation: gen.id, err: e }, `disposing generation ${gen.id} of ${gen.name} failed`)
      } finally {
        slot.draining.delete(gen)
        gen.state = 'retired'
        this.evictor.retired(slot, gen, reason)
        this.collection.watch(slot.name, gen.module.sentinel, slot.recordRetired(gen.id, reason))
        this.#log.info({ extension: gen.name, generation: gen.id, reason }, `unloaded ${gen.name} (generation ${gen.id}, ${reason})`)
      }
    })()
    return gen.disposed
  }

  /**
   * An exception or rejection nobody caught, traced to `generation` of `name` (see
   * loader/owner.ts): counted, and that generation retired, since its state is now unknown. The
   * next request loads a fresh one; requests already on it finish there. The retirement runs in
   * the extension's serial chain, so it cannot cross a reload that is replacing the same generation.
   */
  fault(name: string, generation: number, error: unknown): boolean {
    const slot = this.slots.get(name)
    if (!slot) return false
    slot.faults++
    slot.lastFault = { message: error instanceof Error ? error.message : String(error), generation, at: new Date() }
    if (slot.current?.id !== generation) return false // already retired (or never installed)
    void this.#serialise(slot, async () => {
      const gen = slot.current
      if (gen === null || gen.id !== generation) return
      slot.current = null
      this.#events.emit({ type: 'removed', name })
      void this.retire(slot, gen, 'fault')
    })
    return true
  }

  /**
   * Shutdown: stop loading and evicting, drain and dispose every generation. `deadline` (epoch ms)
   * is the one deadline of the whole stop: drains already under way end by it too.
   */
  async close(deadline = Date.now() + this.#config.drainTimeout): Promise<void> {
    this.#closing = true
    this.evictor.stop()
    const left = () => Math.max(0, deadline - Date.now())
    const pending: Promise<unknown>[] = []
    for (const slot of this.slots.values()) {
      for (const gen of slot.draining) gen.hurry(left())
      pending.push(this.#serialise(slot, async () => {
        const gen = slot.current
        slot.current = null
        return gen ? { disposed: this.retire(slot, gen, 'shutdown', left()) } : null
      }).then((out) => out?.disposed))
    }
    await Promise.allSettled(pending)
    for (const slot of this.slots.values()) for (const gen of slot.draining) gen.hurry(0)
    await Promise.allSettled([...this.slots.values()].flatMap((s) => [...s.draining].map((g) => g.disposed)))
    this.collection.close()
    await this.#executors.close()
  }
}

/** The status and code a failure is answered with (what the error handler will send). */
function failureOf(e: unknown): { status: number; code: string; message: string } {
  if (isResidentError(e) || isHttpError(e)) return { status: e.status, code: e.code, message: e.message }
  // An executor's error record (plain data: status, code, message).
  const r = e as { status?: unknown; code?: unknown; message?: unknown } | null
  if (typeof r?.status === 'number' && typeof r.code === 'string') return { status: r.status, code: r.code, message: String(r.message ?? '') }
  return { status: 500, code: 'RES_ERR_COMMAND_FAILED', message: String((e as Error)?.message ?? e) }
}
