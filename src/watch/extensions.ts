import { readdirSync, type Dirent } from 'node:fs'
import path from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { ResidentConfig } from '../config/types.ts'
import { isResidentError } from '../errors.ts'
import { BuildError } from '../loader/build.ts'
import { isModuleName } from '../config/names.ts'
import { ENTRY_EXTENSIONS, findEntry, listModules } from '../loader/discover.ts'
import type { Registry } from '../residency/registry.ts'
import type { Logger } from '../sdk/types.ts'
import { isEditorTempFile } from './ignore.ts'
import type { ReloadUnit } from './units.ts'

export interface ExtensionUnitsOptions {
  registry: Registry
  config: ResidentConfig
  log: Logger
  /** Load a new extension as soon as its file appears (dev), rather than on its first request. */
  preload: boolean
  track(unit: ReloadUnit): void
  untrack(name: string): void
  /** Schedules `unit` as if one of its files had changed (used for the folder's add/unlink). */
  schedule(name: string, file: string): void
}

/** The module name a path directly inside the extensions folder stands for, if any. */
export function moduleNameOf(dir: string, file: string): string | null {
  const rel = path.relative(dir, file)
  if (rel === '' || rel.startsWith('..') || isEditorTempFile(file)) return null
  const top = rel.split(path.sep)[0]!
  const ext = ENTRY_EXTENSIONS.find((x) => top.endsWith(x))
  const name = ext ? top.slice(0, -ext.length) : top
  return isModuleName(name) ? name : null
}

// A folder extension may read files the build never sees (a template, a JSON read at run time):
// every file of its folder is watched, so saving one reloads it. node_modules and dot-folders are
// not the extension's own; the cap keeps a folder holding data sets from costing a watch per file.
const FOLDER_FILE_CAP = 2000

/** The files of a folder extension (none for a single-file extension or a package). */
export function folderFiles(dir: string): string[] {
  const out: string[] = []
  const visit = (d: string) => {
    let entries: Dirent[]
    try { entries = readdirSync(d, { withFileTypes: true }) } catch { return }
    for (const e of entries) {
      if (out.length >= FOLDER_FILE_CAP) return
      if (e.name.startsWith('.') || e.name === 'node_modules') continue
      const p = path.join(d, e.name)
      if (e.isDirectory()) visit(p)
      else if (e.isFile() && !isEditorTempFile(p)) out.push(p)
    }
  }
  visit(dir)
  return out
}

/** Files a failed build names (a new import with an error in it): watched too, so fixing them recovers. */
function filesInError(e: unknown, entry: string): string[] {
  const cause = isResidentError(e) ? (e as Error).cause : e
  if (!(cause instanceof BuildError)) return []
  return cause.messages.flatMap((m) => m.location?.file ? [path.resolve(path.dirname(entry), m.location.file)] : [])
}

/**
 * Follows the registry: each loaded extension is a unit watching its generation's inputs; an
 * extension leaving service (unload, eviction, delete) stops being watched. The extensions folder
 * itself is watched one level deep for entries that appear or disappear.
 */
export class ExtensionUnits {
  readonly #o: ExtensionUnitsOptions
  #unsubscribe: (() => void) | null = null
  #folder: FSWatcher | null = null

  constructor(o: ExtensionUnitsOptions) {
    this.#o = o
  }

  async start(): Promise<void> {
    const { registry, config } = this.#o
    this.#unsubscribe = registry.subscribe((e) => {
      if (e.type === 'installed') this.#o.track({ ...this.#unit(e.name, e.generation.module.inputs), builtAt: e.buildStartedAt })
      else if (e.type === 'removed') this.#o.untrack(e.name)
      // A load that failed with nothing serving (a first request, rapid-fail retries): watch its
      // files, so that saving the fix loads it at once.
      else if (!registry.slots.get(e.name)?.current) this.#o.track({ ...this.unit(e.name), inputs: [e.entry, ...filesInError(e.error, e.entry)] })
    })
    for (const slot of registry.slots.values()) {
      if (slot.current) this.#o.track(this.#unit(slot.name, slot.current.module.inputs))
    }
    this.#folder = watch(config.extensionsDir, {
      ignoreInitial: true, depth: 0, atomic: true,
      ignored: (p: string) => p !== config.extensionsDir && moduleNameOf(config.extensionsDir, p) === null,
    })
    const onEntry = (file: string) => {
      const name = moduleNameOf(config.extensionsDir, file)
      if (name) this.#o.schedule(name, file)
    }
    this.#folder.on('add', onEntry).on('addDir', onEntry).on('unlink', onEntry).on('unlinkDir', onEntry)
      .on('error', (err) => this.#o.log.warn({ err }, `watching ${config.extensionsDir} failed`))
    await new Promise<void>((resolve) => this.#folder!.once('ready', () => resolve()))
  }

  /**
   * Loads every extension of the folder (and every one configured as a package) now, so a broken
   * one is reported at start-up rather than on its first request; broken ones are watched, so
   * saving the fix loads them. Returns the names that failed.
   */
  async preloadAll(): Promise<string[]> {
    const { config, registry } = this.#o
    const names = new Set(await listModules(config.extensionsDir))
    for (const [name, s] of Object.entries(config.extensions)) if (s.entry) names.add(name)
    const broken: string[] = []
    for (const name of [...names].sort()) {
      if (registry.slots.get(name)?.current) continue
      try { await this.#reload(name, [], true) } catch { /* reported by #reload */ }
      if (!registry.slots.get(name)?.current) broken.push(name)
    }
    return broken
  }

  /** The unit for `name`, also used for names not loaded yet (a file that just appeared). */
  unit(name: string): ReloadUnit {
    return { kind: 'extension', name, inputs: [], reload: (files) => this.#reload(name, files, true) }
  }

  #unit(name: string, inputs: readonly string[]): ReloadUnit {
    const all = [...new Set([...inputs, ...folderFiles(path.join(this.#o.config.extensionsDir, name))])]
    return { kind: 'extension', name, inputs: all, reload: (files) => this.#reload(name, files, false) }
  }

  async #reload(name: string, files: string[], appeared: boolean): Promise<void> {
    const { registry, config, log } = this.#o
    const started = performance.now()
    const ms = () => Math.round(performance.now() - started)
    const what = files.map((f) => path.relative(config.extensionsDir, f) || f).join(', ')
    const entry = config.extensions[name]?.entry ?? await findEntry(config.extensionsDir, name)
    const current = registry.slots.get(name)?.current ?? null
    if (!entry) {
      if (current && await registry.unload(name, 'removed')) log.info({ extension: name, ms: ms() }, `${name} was deleted: unloaded (in-flight requests finished on generation ${current.id})`)
      return
    }
    if (!current) {
      // Taken out of service meanwhile (idle or memory eviction): stop watching; it loads again,
      // fresh, on its next request.
      if (!appeared) { this.#o.untrack(name); return }
      // A save is the fix being tried: forget rapid-fail, so the next request (or the load below) tries it.
      registry.resetFailure(name)
      if (!this.#o.preload) return
      try {
        // A save is the fix being tried: reload() loads at once, even when rapid-fail protection
        // marked it failed (acquire() would answer its 503 until the backoff ended).
        const gen = await registry.reload(name)
        log.info({ extension: name, generation: gen.id, ms: ms() }, `new extension ${name} loaded in ${ms()} ms: /${name}/`)
      } catch (e) {
        // Not serving yet and broken: watch its files anyway, so the fix loads it.
        this.#o.track({ ...this.unit(name), inputs: [entry, ...filesInError(e, entry)] })
        log.warn({ extension: name }, `new extension ${name} failed to load; fix it and save again`)
      }
      return
    }
    try {
      const gen = await registry.reload(name)
      log.info({ extension: name, generation: gen.id, ms: ms(), files: what }, `reloaded ${name} in ${ms()} ms (generation ${gen.id}) after a change to ${what}`)
    } catch (e) {
      const still = registry.slots.get(name)?.current
      log.warn({ extension: name, ms: ms(), files: what },
        `reload of ${name} failed after a change to ${what}; ${still ? `generation ${still.id} keeps serving` : 'it is not serving'}. Fix it and save again.`)
      const extra = filesInError(e, entry)
      if (still && extra.length > 0) this.#o.track(this.#unit(name, [...still.module.inputs, ...extra]))
      throw e
    }
  }

  async close(): Promise<void> {
    this.#unsubscribe?.()
    await this.#folder?.close()
  }
}
