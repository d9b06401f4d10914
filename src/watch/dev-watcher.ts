import type { ResidentConfig } from '../config/types.ts'
import type { Registry } from '../residency/registry.ts'
import type { Logger } from '../sdk/types.ts'
import { applyConfig } from './config-watch.ts'
import { ExtensionUnits } from './extensions.ts'
import { FilterUnits, type FilterSource } from './filters.ts'
import { InputWatcher } from './input-watcher.ts'
import { UnitScheduler } from './scheduler.ts'
import { unitKey, type ReloadUnit } from './units.ts'

export interface DevWatcherOptions {
  registry: Registry
  config: ResidentConfig
  log: Logger & { level?: string }
  /**
   * How long a unit's files must be quiet before it rebuilds (ms). Each change event restarts it,
   * so it is also what keeps a file written in chunks from being built half-written. Default 25.
   */
  quietMs?: number
  /** Load extensions whose file appears, without waiting for a request. Default true. */
  preload?: boolean
  /** The filter chain, when the server has one: its filters are watched and reloaded too. */
  filters?: FilterSource
  /** Re-reads and validates the config (throws when invalid); omit to leave the config file unwatched. */
  rereadConfig?: () => ResidentConfig
  /**
   * The config file to watch: the one in use, or where the default one would be. It is watched
   * even while it does not exist, so creating it applies it (and deleting it goes back to the
   * defaults). Default: `config.file`.
   */
  configFile?: string | null
}

/**
 * `resident dev`'s watcher: each loaded extension's (and filter's) exact build inputs, the
 * extensions folder, and the config file. A change reloads only what depends on it.
 */
export class DevWatcher {
  readonly #o: DevWatcherOptions
  readonly #scheduler: UnitScheduler
  readonly #inputs: InputWatcher
  readonly #units = new Map<string, ReloadUnit>()
  readonly #extensions: ExtensionUnits
  readonly #filters: FilterUnits | null

  constructor(o: DevWatcherOptions) {
    this.#o = o
    this.#scheduler = new UnitScheduler(o.quietMs ?? 25)
    this.#inputs = new InputWatcher(
      (file, keys) => { for (const k of keys) this.#trigger(k, file) },
      (err) => o.log.warn({ err }, 'file watcher error'),
    )
    this.#extensions = new ExtensionUnits({
      registry: o.registry, config: o.config, log: o.log, preload: o.preload ?? true,
      track: (u) => this.track(u),
      untrack: (name) => this.untrack('extension', name),
      schedule: (name, file) => {
        const key = unitKey('extension', name)
        if (!this.#units.has(key)) this.#units.set(key, this.#extensions.unit(name))
        this.#trigger(key, file)
      },
    })
    this.#filters = o.filters
      ? new FilterUnits({
        source: o.filters, filtersDir: o.config.filtersDir, log: o.log,
        track: (u) => this.track(u),
        untrack: (name) => this.untrack('filter', name),
        scheduleAll: (file) => {
          const unit = this.#filters!.all()
          this.#units.set(unitKey('filter', unit.name), unit)
          this.#trigger(unitKey('filter', unit.name), file)
        },
      })
      : null
  }

  async start(): Promise<void> {
    await this.#extensions.start()
    await this.#filters?.start()
    const file = this.#o.configFile ?? this.#o.config.file
    if (file && this.#o.rereadConfig) {
      this.track({ kind: 'config', name: 'config', inputs: [file], reload: () => this.#reloadConfig(file) })
    }
  }

  /** Loads every extension now (see ExtensionUnits.preloadAll); resolves with the broken ones' names. */
  preloadAll(): Promise<string[]> {
    return this.#extensions.preloadAll()
  }

  /** Watches `unit`'s inputs from now on (replacing what it watched before). Filters call this too. */
  track(unit: ReloadUnit): void {
    const key = unitKey(unit.kind, unit.name)
    this.#units.set(key, unit)
    this.#inputs.set(key, unit.inputs, unit.builtAt)
  }

  untrack(kind: ReloadUnit['kind'], name: string): void {
    const key = unitKey(kind, name)
    this.#units.delete(key)
    this.#inputs.remove(key)
  }

  /** The files watched for a unit (for tests and the status page). */
  watchedFiles(kind: ReloadUnit['kind'], name: string): readonly string[] {
    return this.#inputs.files(unitKey(kind, name))
  }

  /** Resolves once no reload is pending or running. */
  idle(): Promise<void> { return this.#scheduler.idle() }

  #trigger(key: string, file: string): void {
    this.#scheduler.trigger(key, file, async (files) => {
      const unit = this.#units.get(key)
      if (unit) await unit.reload(files)
    })
  }

  async #reloadConfig(file: string): Promise<void> {
    const { log, config, registry } = this.#o
    let next: ResidentConfig
    try {
      next = this.#o.rereadConfig!()
    } catch (e) {
      log.error(`${file} changed but is invalid; keeping the previous configuration:\n${(e as Error).message}`)
      return
    }
    const change = applyConfig(config, next, log)
    config.file = next.file
    for (const r of change.restart) log.warn(`config: ${r} changed: restart resident to apply it`)
    if (change.applied.length > 0) log.info(`config reloaded from ${file}: applied ${change.applied.join(', ')}`)
    else if (change.restart.length === 0) log.info(`config reloaded from ${file}: nothing changed`)
    for (const name of change.extensions) {
      if (registry.slots.get(name)?.current) this.#trigger(unitKey('extension', name), file)
    }
    if (change.filters && this.#filters) {
      const unit = this.#filters.all()
      this.#units.set(unitKey('filter', unit.name), unit)
      this.#trigger(unitKey('filter', unit.name), file)
    }
  }

  async close(): Promise<void> {
    await this.#scheduler.close()
    await Promise.all([this.#inputs.close(), this.#extensions.close(), this.#filters?.close()])
  }
}
