import { stat } from 'node:fs/promises'
import path from 'node:path'
import { watch, type FSWatcher } from 'chokidar'

/**
 * Watches exactly the files units name, and maps a changed file back to the units that use it.
 * A unit's set is replaced after each of its builds (imports come and go); files no unit uses any
 * more are unwatched.
 */
export class InputWatcher {
  readonly #byFile = new Map<string, Set<string>>()
  readonly #byUnit = new Map<string, Set<string>>()
  readonly #fsw: FSWatcher
  readonly #fire: (file: string) => void

  constructor(onChange: (file: string, units: string[]) => void, onError: (e: unknown) => void) {
    // atomic: an editor's delete-then-recreate (or rename over) within 100 ms arrives as one
    // `change`. No awaitWriteFinish: the per-unit quiet timer (UnitScheduler) already waits for a
    // file's events to stop, without chokidar's polling delay on every save.
    this.#fsw = watch([], { ignoreInitial: true, atomic: true, persistent: true })
    const fire = (file: string) => {
      const units = this.#byFile.get(file)
      if (units && units.size > 0) onChange(file, [...units])
    }
    this.#fire = fire
    // chokidar throttles `change` to one per 50 ms with no trailing event, so the last chunk of a
    // slow write (or the last save of a burst) can go unreported. The raw fs.watch events are not
    // throttled: they drive the per-unit quiet timer; the processed events cover renames and deletes.
    this.#fsw.on('raw', (_event, evPath, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath
      if (!watched) return
      if (this.#byFile.has(watched)) fire(watched)
      else if (evPath) fire(path.join(watched, evPath))
    })
    this.#fsw.on('change', fire).on('add', fire).on('unlink', fire).on('error', onError)
  }

  /**
   * The files `unit` depends on now. `since` is when the build that read them started: a file
   * written after that, before its watch was in place, would otherwise go unnoticed, so newly
   * watched files are checked once the watch is surely up.
   */
  set(unit: string, files: readonly string[], since?: number): void {
    const next = new Set(files)
    const prev = this.#byUnit.get(unit) ?? new Set<string>()
    const added: string[] = []
    for (const f of next) {
      if (prev.has(f)) continue
      let users = this.#byFile.get(f)
      if (!users) { users = new Set(); this.#byFile.set(f, users); added.push(f) }
      users.add(unit)
    }
    for (const f of prev) if (!next.has(f)) this.#drop(unit, f)
    this.#byUnit.set(unit, next)
    if (added.length > 0) this.#fsw.add(added)
    if (since !== undefined && added.length > 0) {
      setTimeout(() => {
        for (const f of added) {
          stat(f).then((s) => { if (s.mtimeMs >= since && this.#byFile.has(f)) this.#fire(f) }, () => undefined)
        }
      }, 100).unref()
    }
  }

  remove(unit: string): void {
    for (const f of this.#byUnit.get(unit) ?? []) this.#drop(unit, f)
    this.#byUnit.delete(unit)
  }

  files(unit: string): readonly string[] { return [...(this.#byUnit.get(unit) ?? [])] }

  /** Every watched file, for the status page and tests. */
  get watched(): string[] { return [...this.#byFile.keys()].sort() }

  #drop(unit: string, file: string): void {
    const users = this.#byFile.get(file)
    if (!users) return
    users.delete(unit)
    if (users.size === 0) {
      this.#byFile.delete(file)
      this.#fsw.unwatch(file)
    }
  }

  close(): Promise<void> { return this.#fsw.close() }
}
