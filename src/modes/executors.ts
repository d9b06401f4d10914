import type { Logger as PinoLogger } from 'pino'
import { MODES, type Mode } from '../config/modes.ts'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import type { Executor } from './executor.ts'
import { CgiExecutor } from './cgi/executor.ts'
import { InProcessExecutor } from './inprocess.ts'
import { FastcgiExecutor } from './fastcgi/executor.ts'
import { listProcesses, type ModeProcess } from './processes.ts'
import { WorkerExecutor } from './worker/executor.ts'

/** What an executor may need from the server: the live config (read afresh on every load) and the logger. */
export interface ExecutorContext {
  config: ResidentConfig
  log: PinoLogger
}

export type ExecutorFactory = (ctx: ExecutorContext) => Executor

/** The modes this build can run, one factory each. A new mode adds its line here (see docs/architecture/modes.md). */
export const FACTORIES: Partial<Record<Mode, ExecutorFactory>> = {
  inprocess: () => new InProcessExecutor(),
  fastcgi: (ctx) => new FastcgiExecutor(ctx),
  cgi: (ctx) => new CgiExecutor({ bodyLimit: ctx.config.bodyLimit, maxOutputBytes: ctx.config.cgi.maxOutput, maxHeaderBytes: ctx.config.cgi.maxHeaderSize, passEnv: ctx.config.cgi.passEnv, spawn: ctx.config.cgi.spawn }),
  worker: (ctx) => new WorkerExecutor(ctx),
}

/** The executors of one server, one per mode in use, each made on first use. */
export class Executors {
  readonly #ctx: ExecutorContext
  readonly #made = new Map<Mode, Executor>()
  readonly #factories: Partial<Record<Mode, ExecutorFactory>>

  /** `given` are ready-made executors that take the place of the factories' (benchmarks wrap one this way). */
  constructor(ctx: ExecutorContext, given: Partial<Record<Mode, Executor>> = {}, factories = FACTORIES) {
    this.#ctx = ctx
    this.#factories = factories
    for (const [mode, executor] of Object.entries(given) as Array<[Mode, Executor]>) this.#made.set(mode, executor)
  }

  /** Whether this build can run `mode`. */
  available(mode: Mode): boolean {
    return this.#made.has(mode) || this.#factories[mode] !== undefined
  }

  /** The modes this build can run. */
  get modes(): Mode[] {
    return MODES.filter((m) => this.available(m))
  }

  /** The executor of `mode`, made now if need be; a mode this build cannot run is a RES_ERR_CONFIG. */
  get(mode: Mode): Executor {
    let executor = this.#made.get(mode)
    if (executor === undefined) {
      const factory = this.#factories[mode]
      if (factory === undefined) throw new ResidentError('RES_ERR_CONFIG', `mode "${mode}" is not available in this version (available: ${this.modes.join(', ')})`)
      executor = factory(this.#ctx)
      this.#made.set(mode, executor)
    }
    return executor
  }

  /** Throws RES_ERR_CONFIG naming every configured mode this build cannot run (checked at start-up). */
  check(config: ResidentConfig): void {
    const wanted = new Set<Mode>([config.mode])
    for (const s of Object.values(config.extensions)) if (s.mode) wanted.add(s.mode)
    const missing = [...wanted].filter((m) => !this.available(m))
    if (missing.length > 0) {
      throw new ResidentError('RES_ERR_CONFIG', `mode ${missing.map((m) => `"${m}"`).join(', ')} is not available in this version (available: ${this.modes.join(', ')})`)
    }
  }

  /** The processes and threads of every mode in use (none in process), for the dashboard. */
  processes(): ModeProcess[] {
    return [...this.#made.values()].flatMap((e) => listProcesses(e))
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#made.values()].map((e) => e.close()))
  }
}
