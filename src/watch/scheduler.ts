import { stat } from 'node:fs/promises'

/** Runs one unit's reload: the files whose change triggered it are passed along for the log. */
export type UnitRun = (files: string[]) => Promise<void>

interface UnitState {
  timer: NodeJS.Timeout | null
  running: Promise<void> | null
  /** Checking the files' mtimes before a run. */
  settling: boolean
  /** A change arrived while a reload was running: run once more when it ends. */
  dirty: boolean
  files: Set<string>
  run: UnitRun
}

/**
 * Per-unit debounce with no overlap. Every change restarts the unit's quiet timer, so a burst of
 * saves (or a file written in chunks, each chunk an event) builds once, after the writes settle.
 * A unit never has two reloads at once; changes during one mark it dirty and it runs again after,
 * so the last build started is always of the newest files and is the one left installed.
 */
export class UnitScheduler {
  readonly #units = new Map<string, UnitState>()
  readonly #quiet: number
  #closed = false

  constructor(quietMs: number) {
    this.#quiet = quietMs
  }

  trigger(key: string, file: string, run: UnitRun): void {
    if (this.#closed) return
    let u = this.#units.get(key)
    if (!u) {
      u = { timer: null, running: null, settling: false, dirty: false, files: new Set(), run }
      this.#units.set(key, u)
    }
    u.run = run
    u.files.add(file)
    if (u.timer) clearTimeout(u.timer)
    const state = u
    u.timer = setTimeout(() => this.#fire(key, state), this.#quiet)
  }

  #fire(key: string, u: UnitState): void {
    u.timer = null
    if (this.#closed) return
    if (u.running || u.settling) { u.dirty = true; return }
    u.settling = true
    void this.#settled(u).then((wait) => {
      u.settling = false
      if (u.timer || u.running || this.#closed) return // a newer event re-armed it meanwhile
      if (wait > 0) u.timer = setTimeout(() => this.#fire(key, u), wait)
      else this.#start(key, u)
    })
  }

  /**
   * How much longer to wait: a file modified less than `quiet` ms ago is still being written even
   * if its last event has not been seen yet (a busy event loop can run this timer before it).
   */
  async #settled(u: UnitState): Promise<number> {
    const stats = await Promise.all([...u.files].map((f) => stat(f).catch(() => null)))
    const now = Date.now()
    // A clock-skewed mtime in the future would wait forever: ignore it.
    const newest = Math.max(0, ...stats.map((s) => s?.mtimeMs ?? 0).filter((m) => m <= now + this.#quiet))
    return Math.min(this.#quiet, Math.ceil(newest + this.#quiet - now))
  }

  #start(key: string, u: UnitState): void {
    const files = [...u.files]
    u.files.clear()
    u.running = u.run(files).catch(() => undefined).finally(() => {
      u.running = null
      if (u.dirty && !this.#closed) {
        u.dirty = false
        this.#fire(key, u)
      } else if (!u.timer && !u.settling && u.files.size === 0) {
        this.#units.delete(key)
      }
    })
  }

  /** Resolves when no unit has a pending or running reload. */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#units.values()].filter((u) => u.timer || u.running || u.settling)
      if (busy.length === 0) return
      await Promise.all(busy.map((u) => u.running ?? new Promise((r) => setTimeout(r, this.#quiet))))
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const u of this.#units.values()) if (u.timer) clearTimeout(u.timer)
    await Promise.all([...this.#units.values()].map((u) => u.running))
    this.#units.clear()
  }
}
