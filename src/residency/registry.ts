import path from 'node:path'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { findEntry } from '../loader/discover.ts'
import { formatMessages, BuildError } from '../loader/build.ts'
import type { Executor, Mode } from '../modes/executor.ts'
import type { Logger, UnloadReason } from '../sdk/types.ts'
import { Generation } from './generation.ts'

export type SlotState = 'unloaded' | 'loading' | 'resident' | 'draining' | 'failed'

export interface RetiredInfo { generation: number; reason: UnloadReason; at: Date }

/** Everything the registry knows of one extension, loaded or not. */
export class Slot {
  readonly name: string
  entry: string
  current: Generation | null = null
  loading: Promise<Generation> | null = null
  /** Serialises reloads and unloads of this extension. */
  chain: Promise<unknown> = Promise.resolve()
  nextGeneration = 1
  requestsTotal = 0
  inFlight = 0
  errors = 0
  /** Epoch ms of the last lease (a number: this is on every request's path). */
  lastUsed = 0
  lastError: { message: string; at: Date } | null = null
  retired: RetiredInfo[] = []

  constructor(name: string, entry: string) {
    this.name = name
    this.entry = entry
  }

  get state(): SlotState {
    if (this.current) return 'resident'
    if (this.loading) return 'loading'
    return 'unloaded'
  }
}

export interface RegistryOptions {
  config: ResidentConfig
  executor: Executor
  log: Logger
}

/**
 * The table of extensions: loads on first use (one load shared by concurrent first requests),
 * keeps generations resident, and retires them reference-counted: a retired generation is disposed
 * when its last request releases it, or after the drain timeout.
 */
export class Registry {
  readonly slots = new Map<string, Slot>()
  readonly #config: ResidentConfig
  readonly #executor: Executor
  readonly #log: Logger
  #closing = false

  constructor(o: RegistryOptions) {
    this.#config = o.config
    this.#executor = o.executor
    this.#log = o.log
  }

  get mode(): Mode { return this.#executor.mode }

  /**
   * The current generation of `name`, loaded if need be, with a request lease taken on it;
   * null when there is no such extension. Pair every non-null result with release().
   */
  async acquire(name: string): Promise<Generation | null> {
    return this.tryAcquire(name) ?? this.#acquireSlow(name)
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
      const entry = await findEntry(this.#config.extensionsDir, name)
      if (!entry) {
        if (slot && !slot.current && !slot.loading) this.slots.delete(name)
        return null
      }
      slot = this.slots.get(name) ?? new Slot(name, entry)
      this.slots.set(name, slot)
      slot.entry = entry
      if (slot.current) return this.#lease(slot, slot.current)
      if (!slot.loading) this.#startLoad(slot)
    }
    const gen = await slot.loading!
    return this.#lease(slot, gen)
  }

  release(gen: Generation): void {
    const slot = this.slots.get(gen.name)
    if (slot) slot.inFlight--
    gen.release()
  }

  #lease(slot: Slot, gen: Generation): Generation {
    slot.requestsTotal++
    slot.inFlight++
    slot.lastUsed = Date.now()
    return gen.acquire()
  }

  #startLoad(slot: Slot): void {
    const p = this.#instantiate(slot).then((gen) => {
      slot.current = gen
      return gen
    }).finally(() => {
      if (slot.loading === p) slot.loading = null
    })
    slot.loading = p
    p.catch(() => { /* reported to each waiting request */ })
  }

  /** Builds, evaluates and initialises a new generation of `slot`; does not install it. */
  async #instantiate(slot: Slot): Promise<Generation> {
    if (this.#closing) throw new ResidentError('RES_ERR_UNAVAILABLE')
    const id = slot.nextGeneration++
    const log = this.#log.child({ extension: slot.name, generation: id })
    const started = performance.now()
    try {
      const module = await this.#executor.load({
        name: slot.name, entry: slot.entry, generation: id,
        config: this.#config.extensions[slot.name]?.config ?? {}, log,
      })
      slot.lastError = null
      log.info({ ms: Math.round(performance.now() - started), commands: Object.values(module.table.commands).map((c) => c.name) }, `loaded ${slot.name} (generation ${id})`)
      return new Generation(id, slot.name, module)
    } catch (e) {
      const reason = e instanceof BuildError ? formatMessages(e.messages) : (e as Error)?.stack ?? String(e)
      slot.errors++
      slot.lastError = { message: e instanceof BuildError ? e.message : String((e as Error)?.message ?? e), at: new Date() }
      log.error(`failed to load ${path.relative(process.cwd(), slot.entry)}:\n${reason}`)
      throw new ResidentError('RES_ERR_LOAD_FAILED',
        this.#config.development ? `extension "${slot.name}" failed to load: ${slot.lastError.message}` : `extension "${slot.name}" failed to load`,
        { cause: e })
    }
  }

  /**
   * Loads a new generation beside the current one and switches to it only once it initialised;
   * in-flight requests finish on the old one, which is then disposed. A failure leaves the old
   * generation serving and rejects.
   */
  reload(name: string): Promise<Generation> {
    const slot = this.slots.get(name)
    if (!slot) return Promise.reject(new ResidentError('RES_ERR_NOT_FOUND', `no extension "${name}" is loaded`))
    return this.#serialise(slot, async () => {
      const entry = await findEntry(this.#config.extensionsDir, name)
      if (!entry) throw new ResidentError('RES_ERR_NOT_FOUND', `extension "${name}" no longer exists`)
      slot.entry = entry
      const next = await this.#instantiate(slot)
      const prev = slot.current
      slot.current = next
      if (prev) void this.retire(slot, prev, 'reload')
      return next
    })
  }

  /** Takes the current generation out of service and disposes it once drained. */
  unload(name: string, reason: UnloadReason): Promise<boolean> {
    const slot = this.slots.get(name)
    if (!slot) return Promise.resolve(false)
    return this.#serialise(slot, async () => {
      if (slot.loading) await slot.loading.catch(() => undefined)
      const gen = slot.current
      if (!gen) return false
      slot.current = null
      await this.retire(slot, gen, reason)
      return true
    })
  }

  #serialise<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    const run = slot.chain.then(fn, fn)
    slot.chain = run.catch(() => undefined)
    return run
  }

  /** Retires a generation: waits for its requests (up to drainTimeout), then disposes it. */
  retire(slot: Slot, gen: Generation, reason: UnloadReason): Promise<void> {
    if (gen.disposed) return gen.disposed
    gen.retired = reason
    gen.disposed = (async () => {
      if (gen.inflight > 0) {
        let timer: NodeJS.Timeout | undefined
        const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), this.#config.drainTimeout) })
        const drained = await Promise.race([gen.idle().then(() => false), timedOut])
        clearTimeout(timer)
        if (drained) this.#log.warn({ extension: gen.name, generation: gen.id, inflight: gen.inflight }, `generation ${gen.id} of ${gen.name} did not drain within ${this.#config.drainTimeout} ms; disposing it anyway`)
      }
      await gen.module.dispose(reason)
      slot.retired.push({ generation: gen.id, reason, at: new Date() })
      if (slot.retired.length > 20) slot.retired.shift()
      this.#log.info({ extension: gen.name, generation: gen.id, reason }, `unloaded ${gen.name} (generation ${gen.id}, ${reason})`)
    })()
    return gen.disposed
  }

  /** Shutdown: stop loading, drain and dispose every generation. */
  async close(): Promise<void> {
    this.#closing = true
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
    await this.#executor.close()
  }
}
