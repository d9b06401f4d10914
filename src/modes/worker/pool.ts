import type { Logger as PinoLogger } from 'pino'
import type { RapidFailSettings, WorkerSettings } from '../../config/types.ts'
import type { UnloadReason } from '../../sdk/types.ts'
import type { CommandTable } from '../commands.ts'
import type { ExactMemory, LoadedModule } from '../executor.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import type { Outcome } from '../outcome.ts'
import type { ModeProcess } from '../processes.ts'
import type { WorkerInit } from './protocol.ts'
import { workerStack } from './stack.ts'
import { WorkerThread, type ThreadExit } from './thread.ts'

export interface PoolOptions {
  script: URL | string
  init: Omit<WorkerInit, 'stats'>
  settings: WorkerSettings
  /** Crash backoff: `maxFailures` crashes within `window` delay the next start by `backoff`, doubling up to `maxBackoff`. */
  rapidFail: RapidFailSettings
  log: PinoLogger
  /** How long dispose() waits for a worker's dispose() before terminating it anyway (ms). */
  disposeTimeout: number
}

interface Member { thread: WorkerThread; ready: boolean }

/**
 * One generation of an extension in worker mode: a pool of `settings.pool` worker threads, each
 * with its own copy of the extension and its own state (as the processes of a FastCGI pool). A
 * request goes to the ready worker with the fewest requests in flight. A worker that crashes, hangs
 * past a deadline or outgrows `maxExternal` is replaced, its requests answered 502; repeated
 * crashes back off (rapid-fail) and meanwhile the extension answers 503 with Retry-After.
 */
export class WorkerPool implements LoadedModule {
  readonly mode = 'worker' as const
  readonly table: CommandTable
  readonly inputs: readonly string[]
  readonly sentinel = null
  readonly exportState?: () => Promise<unknown>
  readonly importState?: (state: unknown) => Promise<void>
  readonly #o: PoolOptions
  readonly #members: Member[] = []
  #starting: Promise<void> | null = null
  #disposing = false
  #crashTimes: number[] = []
  #backoffUntil = 0
  #restartTimer: NodeJS.Timeout | null = null
  /** Replacements due when the restart timer fires (one per worker lost). */
  #owed = 0
  #memoryTimer: NodeJS.Timeout | null = null
  readonly #counts = { started: 0, crashes: 0, hangs: 0, memory: 0 }
  #lastExit: { kind: string; message: string; at: string } | null = null

  /** Starts the pool; resolves once every worker has loaded the extension (rejects, stopping them all, if one fails). */
  static async start(o: PoolOptions): Promise<WorkerPool> {
    const members: Member[] = []
    let pool: WorkerPool | null = null
    const onExit = (thread: WorkerThread, exit: ThreadExit) => pool?.exited(thread, exit)
    for (let i = 0; i < o.settings.pool; i++) members.push({ thread: new WorkerThread(o.script, o.init, o.settings, o.log, onExit), ready: false })
    let first: Awaited<WorkerThread['ready']>
    try {
      const answers = await Promise.all(members.map((m) => m.thread.ready))
      first = answers[0]!
    } catch (e) {
      await Promise.allSettled(members.map((m) => m.thread.stop({ kind: 'stopped', message: 'its load failed', code: 0 })))
      throw e
    }
    for (const m of members) m.ready = true
    pool = new WorkerPool(o, members, first.table, first.hooks)
    return pool
  }

  private constructor(o: PoolOptions, members: Member[], table: CommandTable, hooks: { exportState: boolean; importState: boolean }) {
    this.#o = o
    this.#members.push(...members)
    this.#counts.started = members.length
    this.table = table
    this.inputs = o.init.inputs
    if (hooks.exportState) {
      // With several workers, each has its own state: the first one's is carried over.
      this.exportState = async () => this.#members.find((m) => m.ready)?.thread.call('exportState')
    }
    if (hooks.importState) {
      this.importState = async (state) => { await Promise.all(this.#members.filter((m) => m.ready).map((m) => m.thread.call('importState', state))) }
    }
    if (o.settings.maxExternal !== null) {
      this.#memoryTimer = setInterval(() => this.#checkExternal(), 250)
      this.#memoryTimer.unref()
    }
  }

  invoke(inv: Invocation): Promise<Outcome> {
    const member = this.#pick()
    if (member) return member.thread.invoke(inv)
    // Every worker is starting, or suspect of a hang: wait for the first to be usable. A request
    // whose deadline passed meanwhile has had its 504; it is not run late.
    const waits = this.#members.filter((m) => m.ready && m.thread.suspect).map((m) => m.thread.verdict())
    if (this.#starting) waits.push(this.#starting)
    if (waits.length > 0) return Promise.race(waits).then(() => inv.deadline !== 0 && Date.now() > inv.deadline ? expired() : this.invoke(inv))
    return Promise.resolve(this.#unavailable())
  }

  #pick(): Member | null {
    let best: Member | null = null
    for (const m of this.#members) {
      if (!m.ready || m.thread.exited || m.thread.suspect) continue
      if (best === null || m.thread.inFlight < best.thread.inFlight) best = m
    }
    return best
  }

  #unavailable(): Outcome {
    if (this.#disposing) {
      return { kind: 'error', error: {
        status: 503, code: 'RES_ERR_UNAVAILABLE', headers: { 'retry-after': '1' },
        message: `the workers of "${this.#o.init.name}" are being stopped (the extension was unloaded or reloaded); retry`,
      } }
    }
    const seconds = Math.max(1, Math.ceil((this.#backoffUntil - Date.now()) / 1000))
    return { kind: 'error', error: {
      status: 503, code: 'RES_ERR_WORKER_BACKOFF',
      message: `the workers of "${this.#o.init.name}" crashed repeatedly; the next one starts in ${seconds} s`,
      headers: { 'retry-after': String(seconds) },
      data: { retryAt: new Date(this.#backoffUntil).toISOString(), lastExit: this.#lastExit?.message },
    } }
  }

  cancel(id: string, reason: CancelReason): void {
    for (const m of this.#members) {
      const thread = m.thread
      thread.cancel(id, reason, () => {
        this.#o.log.error({ extension: this.#o.init.name, threadId: thread.worker.threadId, graceMs: this.#o.settings.hangGrace },
          `a worker of ${this.#o.init.name} did not answer within ${this.#o.settings.hangGrace} ms of a deadline; terminating it as hung`)
        void thread.stop({ kind: 'hung', message: 'it was hung past a deadline and was replaced', code: 1 })
      })
    }
  }

  /** A worker exited: count it, and unless the pool is being disposed, start its replacement (after a backoff when crashes repeat). */
  exited(thread: WorkerThread, exit: ThreadExit): void {
    const i = this.#members.findIndex((m) => m.thread === thread)
    if (i !== -1) this.#members.splice(i, 1)
    if (this.#disposing || exit.kind === 'stopped') return
    if (exit.kind === 'crash') this.#counts.crashes++
    else if (exit.kind === 'hung') this.#counts.hangs++
    else this.#counts.memory++
    this.#lastExit = { kind: exit.kind, message: exit.message, at: new Date().toISOString() }
    if (exit.kind === 'crash') {
      this.#o.log.error({ extension: this.#o.init.name, generation: this.#o.init.generation, exitCode: exit.code },
        `a worker of ${this.#o.init.name} crashed (${exit.message}); replacing it`)
    }
    this.#scheduleRestart()
  }

  #scheduleRestart(): void {
    if (this.#disposing) return
    this.#owed++
    if (this.#restartTimer !== null) return
    const now = Date.now()
    const { window, maxFailures, backoff, maxBackoff } = this.#o.rapidFail
    this.#crashTimes = this.#crashTimes.filter((t) => now - t < window)
    this.#crashTimes.push(now)
    const over = this.#crashTimes.length - maxFailures
    const delay = over >= 0 ? Math.min(backoff * 2 ** over, maxBackoff) : 0
    this.#backoffUntil = now + delay
    if (delay > 0) {
      this.#o.log.warn({ extension: this.#o.init.name, delayMs: delay }, `workers of ${this.#o.init.name} keep crashing; next start in ${delay} ms`)
    }
    let release!: () => void
    // While a start is due at once, requests wait for it; during a backoff they are answered 503.
    const starting = delay === 0 ? new Promise<void>((r) => { release = r }) : null
    if (starting) this.#starting = starting
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null
      const n = this.#owed
      this.#owed = 0
      void Promise.all(Array.from({ length: n }, () => this.#replace())).finally(() => {
        if (starting) {
          if (this.#starting === starting) this.#starting = null
          release()
        }
      })
    }, delay)
    this.#restartTimer.unref()
  }

  async #replace(): Promise<void> {
    if (this.#disposing) return
    const member: Member = { thread: new WorkerThread(this.#o.script, this.#o.init, this.#o.settings, this.#o.log, (t, e) => this.exited(t, e)), ready: false }
    this.#members.push(member)
    this.#counts.started++
    try {
      await member.thread.ready
      member.ready = true
      if (this.#disposing) await member.thread.stop({ kind: 'stopped', message: 'unloaded', code: 0 })
    } catch (e) {
      // Its init failed (or it died starting): a crash like any other, with the same backoff.
      if (!member.thread.exited) await member.thread.stop({ kind: 'crash', message: `its restart failed: ${(e as Error).message}`, code: 1 })
    }
  }

  #checkExternal(): void {
    const limit = this.#o.settings.maxExternal
    if (limit === null) return
    for (const m of this.#members) {
      const external = m.thread.memory().external
      if (m.ready && !m.thread.exited && external > limit) {
        this.#o.log.error({ extension: this.#o.init.name, external, limit }, `a worker of ${this.#o.init.name} holds ${Math.round(external / 1024 ** 2)} MB of buffers, over maxExternal; replacing it`)
        void m.thread.stop({ kind: 'memory', message: 'it held more buffer memory than maxExternal and was replaced', code: 1 })
      }
    }
  }

  async canUnload(reason: UnloadReason): Promise<boolean> {
    const answers = await Promise.allSettled(this.#members.filter((m) => m.ready).map((m) => m.thread.call('canUnload', reason)))
    return answers.every((a) => a.status !== 'fulfilled' || a.value !== false)
  }

  /** Runs each worker's dispose(), then terminates it: its memory comes back with the thread. */
  async dispose(reason: UnloadReason): Promise<void> {
    this.#disposing = true
    if (this.#restartTimer) clearTimeout(this.#restartTimer)
    if (this.#memoryTimer) clearInterval(this.#memoryTimer)
    await Promise.allSettled(this.#members.map(async (m) => {
      if (m.ready && !m.thread.exited) {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise((resolve) => { timer = setTimeout(resolve, this.#o.disposeTimeout) })
        try {
          await Promise.race([m.thread.call('dispose', reason), timeout])
        } catch (e) {
          this.#o.log.error({ err: e, extension: this.#o.init.name }, `${this.#o.init.name}: dispose() failed in its worker`)
        } finally {
          clearTimeout(timer)
        }
      }
      await m.thread.stop({ kind: 'stopped', message: `unloaded (${reason})`, code: 0 })
    }))
  }

  /** Its worker threads, for the dashboard. */
  processes(): ModeProcess[] {
    return this.#members.filter((m) => !m.thread.exited).map((m) => ({
      pid: null, id: `thread ${m.thread.worker.threadId}`, kind: 'worker thread', extension: this.#o.init.name,
      state: !m.ready ? 'starting' : m.thread.inFlight > 0 ? `busy (${m.thread.inFlight})` : 'idle',
      requests: m.thread.requests, startedAt: m.thread.startedAt,
    }))
  }

  /** The slow log's stack of the worker running request `id` (see stack.ts). */
  async stackOf(id: string): Promise<string | null> {
    const m = this.#members.find((x) => !x.thread.exited && x.thread.runs(id))
    if (!m) return null
    const { entry, generation, map } = this.#o.init
    return workerStack(m.thread.worker.threadId, { entry, generation, map })
  }

  /** The workers' heaps, exactly (each worker publishes its own isolate's figures). */
  memory(): ExactMemory {
    const total: ExactMemory = { heapUsed: 0, heapTotal: 0, external: 0 }
    for (const m of this.#members) {
      if (m.thread.exited) continue
      const s = m.thread.memory()
      total.heapUsed += s.heapUsed
      total.heapTotal += s.heapTotal
      total.external += s.external
    }
    return total
  }

  status(): Record<string, unknown> {
    return {
      pool: this.#o.settings.pool,
      workers: this.#members.map((m) => ({ threadId: m.thread.worker.threadId, ready: m.ready, inFlight: m.thread.inFlight, ...m.thread.memory() })),
      started: this.#counts.started,
      crashes: this.#counts.crashes,
      hangs: this.#counts.hangs,
      memoryReplacements: this.#counts.memory,
      lastExit: this.#lastExit,
      backoffUntil: this.#backoffUntil > Date.now() ? new Date(this.#backoffUntil).toISOString() : null,
      resourceLimits: this.#o.settings.resourceLimits,
      maxExternal: this.#o.settings.maxExternal,
    }
  }
}

/** What a request that waited past its deadline for a usable worker gets (the client already has its 504). */
function expired(): Outcome {
  return { kind: 'error', error: { status: 504, code: 'RES_ERR_TIMEOUT', message: 'the request waited for a worker past its deadline', headers: {} } }
}
