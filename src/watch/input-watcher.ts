import { stat } from 'node:fs/promises'
import path from 'node:path'
import { watch, type FSWatcher } from 'chokidar'

const SWEEP_MS = 500
const COARSE_MS = 15

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
  readonly #lastEvent = new Map<string, number>()
  /** Each watched file's newest mtime this watcher has accounted for. */
  readonly #known = new Map<string, number>()
  readonly #sweeper: NodeJS.Timeout

  constructor(onChange: (file: string, units: string[]) => void, onError: (e: unknown) => void) {
    // atomic: an editor's delete-then-recreate (or rename over) within 100 ms arrives as one
    // `change`. No awaitWriteFinish: the per-unit quiet timer (UnitScheduler) already waits for a
    // file's events to stop, without chokidar's polling delay on every save.
    this.#fsw = watch([], { ignoreInitial: true, atomic: true, persistent: true })
    const fire = (file: string) => {
      this.#lastEvent.set(file, Date.now())
      const units = this.#byFile.get(file)
      if (units && units.size > 0) onChange(file, [...units])
    }
    this.#fire = fire
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS).unref()
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
   * written after that, before its watch was in place, is caught by the sweep.
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
    // File times come from the kernel's coarse clock, which can lag Date.now() by a tick: a file
    // stamped up to COARSE_MS before the build started may still be newer than what it read.
    for (const f of added) this.#known.set(f, (since ?? Date.now()) - COARSE_MS)
  }

  // A safety net under the events: chokidar sets a file's watch up after an async stat (a write in
  // between is not reported), and a busy machine stretches that. Every SWEEP_MS the watched files
  // are stat'ed; one modified since it was last known, with no event seen after that write, fires.
  #sweep(): void {
    for (const [f, known] of this.#known) {
      stat(f).then((s) => {
        if (!this.#known.has(f)) return
        this.#known.set(f, Math.max(known, s.mtimeMs + 0.001))
        if (s.mtimeMs >= known && (this.#lastEvent.get(f) ?? 0) < s.mtimeMs) this.#fire(f)
      }, () => undefined)
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
      this.#lastEvent.delete(file)
      this.#known.delete(file)
      this.#fsw.unwatch(file)
    }
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper)
    return this.#fsw.close()
  }
}
