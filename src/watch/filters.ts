import path from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { Logger } from '../sdk/types.ts'
import { moduleNameOf } from './extensions.ts'
import type { ReloadUnit } from './units.ts'

/** What the watcher needs of the filter chain (the FilterManager provides it). */
export interface FilterSource {
  /** Each loaded filter's build inputs, by name. */
  watchSet(): Map<string, readonly string[]>
  /** Rebuilds one filter beside the running chain and swaps on success. */
  reload(name: string): Promise<void>
  /** Rebuilds the whole chain, picking up added and removed filter files. */
  reloadAll(): Promise<void>
}

export interface FilterUnitsOptions {
  source: FilterSource
  filtersDir: string
  log: Logger
  track(unit: ReloadUnit): void
  untrack(name: string): void
  /** Schedules a whole-chain reload (a filter file appeared or went). */
  scheduleAll(file: string): void
}

/**
 * Filters as watch units: each filter's own inputs reload that filter; a file appearing in or
 * leaving the filters folder reloads the chain (which filters run is decided by the folder).
 */
export class FilterUnits {
  readonly #o: FilterUnitsOptions
  #folder: FSWatcher | null = null

  constructor(o: FilterUnitsOptions) {
    this.#o = o
  }

  async start(): Promise<void> {
    this.#retrack()
    const dir = this.#o.filtersDir
    this.#folder = watch(dir, { ignoreInitial: true, depth: 0, atomic: true, ignored: (p: string) => p !== dir && moduleNameOf(dir, p) === null })
    const onEntry = (file: string) => this.#o.scheduleAll(file)
    this.#folder.on('add', onEntry).on('addDir', onEntry).on('unlink', onEntry).on('unlinkDir', onEntry)
      .on('error', (err) => this.#o.log.warn({ err }, `watching ${dir} failed`))
    await new Promise<void>((resolve) => this.#folder!.once('ready', () => resolve()))
  }

  /** The unit that reloads the whole chain. */
  all(): ReloadUnit {
    return { kind: 'filter', name: '*', inputs: [], reload: (files) => this.#run('the filter chain', files, () => this.#o.source.reloadAll()) }
  }

  #retrack(): void {
    const set = this.#o.source.watchSet()
    for (const [name, inputs] of set) {
      this.#o.track({ kind: 'filter', name, inputs, reload: (files) => this.#run(`filter ${name}`, files, () => this.#o.source.reload(name)) })
    }
    this.#known.forEach((name) => { if (!set.has(name)) this.#o.untrack(name) })
    this.#known = new Set(set.keys())
  }

  #known = new Set<string>()

  async #run(what: string, files: string[], fn: () => Promise<void>): Promise<void> {
    const started = performance.now()
    const changed = files.map((f) => path.basename(f)).join(', ')
    try {
      await fn()
      this.#o.log.info({ ms: Math.round(performance.now() - started) }, `reloaded ${what} in ${Math.round(performance.now() - started)} ms after a change to ${changed}`)
    } catch (e) {
      this.#o.log.warn({ err: e }, `reload of ${what} failed after a change to ${changed}; the running filters keep serving. Fix it and save again.`)
      throw e
    } finally {
      this.#retrack()
    }
  }

  async close(): Promise<void> {
    await this.#folder?.close()
  }
}
