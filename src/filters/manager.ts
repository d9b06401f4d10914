import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { BuildError } from '../loader/build.ts'
import { findEntry, listModules } from '../loader/discover.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { NOTIFICATIONS } from '../sdk/filter.ts'
import type { Logger, UnloadReason } from '../sdk/types.ts'
import { FilterChain } from './chain.ts'
import { loadFilter, type LoadedFilter } from './load.ts'

/**
 * Loads the filters at start-up and keeps the chain in force. Reloads (for `resident dev` and
 * SIGHUP) build the new generation beside the old one and swap the chain only when every build
 * and init() succeeded; requests already running keep their snapshot, and the replaced filters
 * are disposed once those requests have finished (or after drainTimeout).
 */
export class FilterManager {
  readonly #config: ResidentConfig
  readonly #log: Logger
  #chain = new FilterChain([], [])
  /** Per filter: the last generation loaded (1 for the first load, +1 per reload). */
  readonly #generations = new Map<string, number>()
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  /** Whether fastify runs the chain's hooks; a server started without filters may leave them out. */
  #hooked = true

  constructor(config: ResidentConfig, log: Logger) {
    this.#config = config
    this.#log = log
  }

  /**
   * Says that the server runs without the filter hooks (it started with no filter, and does not
   * reload them as `resident dev` does): a reload that would add the first filter is refused.
   */
  unhooked(): void { this.#hooked = false }

  /** Exceptions each filter's code raised outside any request (each reloaded that filter). */
  readonly #faults = new Map<string, number>()

  /**
   * An exception nobody caught, traced to `generation` of filter `name`: counted, and the filter
   * rebuilt in place (its state is unknown now). Resolves once the new one serves.
   */
  async fault(name: string, generation: number): Promise<void> {
    this.#faults.set(name, (this.#faults.get(name) ?? 0) + 1)
    if (this.#chain.filters.find((f) => f.name === name)?.generation !== generation) return
    await this.reload(name)
  }

  /** The chain new requests use. */
  get current(): FilterChain { return this.#chain }

  /** The order in force, for the start-up banner and the docs. */
  describe(): string[] { return this.#chain.describe() }

  /** The loaded filters in the order they run, for the status page. */
  status(): Array<{ name: string; priority: string; generation: number; entry: string; notifications: string[]; paths: boolean; faults: number }> {
    return this.#chain.filters.map((f) => ({
      name: f.name, priority: f.priority, generation: f.generation, entry: f.entry, faults: this.#faults.get(f.name) ?? 0,
      notifications: NOTIFICATIONS.filter((n) => typeof (f.instance as unknown as Record<string, unknown>)[n] === 'function'),
      paths: f.matches !== null,
    }))
  }

  /** Each loaded filter's watch set: the absolute paths of every file its build read. */
  watchSet(): Map<string, readonly string[]> {
    return new Map(this.#chain.filters.map((f) => [f.name, f.inputs]))
  }

  /** One filter's watch set, or null when it is not loaded. */
  inputs(name: string): readonly string[] | null {
    return this.#chain.filters.find((f) => f.name === name)?.inputs ?? null
  }

  /** The names of the filters to load: files in filtersDir plus configured packages, minus disabled ones. */
  async names(): Promise<string[]> {
    const { modules } = this.#config.filters
    const names = new Set(await listModules(this.#config.filtersDir))
    for (const [name, s] of Object.entries(modules)) if (s.entry) names.add(name)
    return [...names].filter((n) => modules[n]?.enabled !== false).sort()
  }

  /** Start-up: loads every filter; any failure fails the start (a missing auth filter must not mean an open door). */
  async loadAll(): Promise<void> {
    const loaded = await this.#loadMany(await this.names())
    this.#chain = new FilterChain(loaded, this.#config.filters.order, this.#config.requestTimeout)
  }

  /**
   * Rebuilds one filter (or adds it, if its file is new; or removes it, if its file is gone) and
   * swaps the chain. On a failed build or init() the old chain stays in force and this rejects.
   */
  reload(name: string): Promise<void> {
    return this.#serial(async () => {
      const keep = this.#chain.filters.filter((f) => f.name !== name)
      const wanted = (await this.names()).includes(name)
      if (wanted) this.#checkHooked()
      const fresh = wanted ? await this.#loadMany([name]) : []
      this.#swap([...keep, ...fresh], 'reload')
    })
  }

  /** Rebuilds every filter (and picks up added or removed files); all or nothing. */
  reloadAll(): Promise<void> {
    return this.#serial(async () => {
      const names = await this.names()
      if (names.length > 0) this.#checkHooked()
      this.#swap(await this.#loadMany(names), 'reload')
    })
  }

  /** Disposes every filter (shutdown). */
  close(): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true
      const old = this.#chain
      this.#chain = new FilterChain([], [])
      await Promise.all(old.filters.map((f) => f.dispose('shutdown')))
    })
  }

  #checkHooked(): void {
    if (this.#hooked) return
    throw new ResidentError('RES_ERR_FILTERS_NEED_RESTART', 'this server started without filters, so fastify runs no filter hooks ' +
      '(each costs every request a little); restart it to load filters, or run `resident dev`, which keeps the hooks to load them live')
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new Error('the filter manager is closed')
      return fn()
    })
    this.#queue = run.catch(() => undefined)
    return run
  }

  #swap(filters: LoadedFilter[], reason: UnloadReason): void {
    const old = this.#chain
    this.#chain = new FilterChain(filters, this.#config.filters.order, this.#config.requestTimeout)
    const still = new Set(filters)
    const gone = old.filters.filter((f) => !still.has(f))
    if (gone.length === 0) return
    let done = false
    const dispose = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      for (const f of gone) void f.dispose(reason)
    }
    const timer = setTimeout(dispose, this.#config.drainTimeout)
    timer.unref()
    old.whenDrained(dispose)
    this.#log.info({ filters: this.describe() }, 'filter chain reloaded')
  }

  async #loadMany(names: string[]): Promise<LoadedFilter[]> {
    const loaded: LoadedFilter[] = []
    try {
      for (const name of names) loaded.push(await this.#loadOne(name))
      return loaded
    } catch (e) {
      await Promise.all(loaded.map((f) => f.dispose('reload')))
      throw e
    }
  }

  async #loadOne(name: string): Promise<LoadedFilter> {
    const settings = this.#config.filters.modules[name]
    const entry = settings?.entry ?? await findEntry(this.#config.filtersDir, name)
    if (!entry) throw new ResidentError('RES_ERR_FILTER_LOAD_FAILED', `filter "${name}": no such file in ${this.#config.filtersDir}`)
    const log = (this.#log.child({ filter: name }))
    try {
      const generation = (this.#generations.get(name) ?? 0) + 1
      this.#generations.set(name, generation)
      return await loadFilter({ name, entry, generation, config: settings?.config ?? {}, log })
    } catch (e) {
      const why = e instanceof BuildError ? e.message : (mapErrorStack(e) as Error)?.stack ?? String(e)
      log.error({ err: e }, `filter "${name}" failed to load`)
      throw new ResidentError('RES_ERR_FILTER_LOAD_FAILED', `filter "${name}" failed to load: ${why}`, { cause: e })
    }
  }
}
