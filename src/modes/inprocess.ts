import type { Readable } from 'node:stream'
import type { Logger as PinoLogger } from 'pino'
import { EXTENSION_BASE } from '../sdk/brand.ts'
import type { Extension } from '../sdk/extension.ts'
import type { UnloadReason } from '../sdk/types.ts'
import { instantiate } from '../loader/instantiate.ts'
import { callAs, type Owner } from '../loader/owner.ts'
import { pollutionBefore, pollutionError, undoPollution } from '../loader/pollution.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { commandTable, type CommandTable } from './commands.ts'
import { cancelError, InvokedRequest, LiveRequests } from './command-request.ts'
import type { Executor, LoadSpec, LoadedModule } from './executor.ts'
import type { Invocation } from './invocation.ts'
import { errorOutcome, type Outcome } from './outcome.ts'
import { commandOutcome, errorRecordOf } from './results.ts'

type Methods = Record<string, (params: unknown, request: unknown) => unknown>

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v instanceof Promise || (typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function')
}

/** Runs extensions in the host's own isolate: esbuild bundle → vm.compileFunction → instance → direct calls. */
export class InProcessExecutor implements Executor {
  readonly mode = 'inprocess' as const

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const { Handler, instance, inspected: table, inputs, dispose, owner, growth } =
      await instantiate<Extension, CommandTable>(spec, EXTENSION_BASE, 'Extension', commandTable)
    const module = new InProcessModule(instance, table, inputs, Handler, dispose, spec.log as unknown as PinoLogger, spec.development, owner)
    module.loadGrowth = growth
    return module
  }

  async close(): Promise<void> {}
}

/** One generation in process. A synchronous command is answered synchronously: no promise on the hot path. */
class InProcessModule implements LoadedModule {
  readonly mode = 'inprocess' as const
  readonly table: CommandTable
  readonly inputs: readonly string[]
  readonly sentinel: object
  loadGrowth?: { bytes: number; clean: boolean; collected: boolean }
  readonly exportState?: () => Promise<unknown>
  readonly importState?: (state: unknown) => Promise<void>
  readonly #instance: Extension
  readonly #methods: Methods
  readonly #dispose: (reason: UnloadReason) => Promise<void>
  readonly #log: PinoLogger
  readonly #development: boolean
  /** Whose code this is: commands run as it, so what they leave running stays traceable (loader/owner.ts). */
  readonly #owner: Owner
  /** Async commands not yet settled and streamed bodies not yet finished: what cancel() can reach. */
  readonly #live = new LiveRequests()

  constructor(instance: Extension, table: CommandTable, inputs: string[], Handler: Function, dispose: (reason: UnloadReason) => Promise<void>, log: PinoLogger, development: boolean, owner: Owner) {
    this.#owner = owner
    this.#instance = instance
    this.#methods = instance as unknown as Methods
    this.table = table
    this.inputs = inputs
    this.sentinel = Handler
    this.#dispose = dispose
    this.#log = log
    this.#development = development
    if (typeof instance.exportState === 'function') {
      this.exportState = async () => {
        try { return await instance.exportState!() } catch (e) { throw mapErrorStack(e) }
      }
    }
    if (typeof instance.importState === 'function') {
      this.importState = async (state: unknown) => {
        try { await instance.importState!(state) } catch (e) { throw mapErrorStack(e) }
      }
    }
  }

  invoke(inv: Invocation): Outcome | Promise<Outcome> {
    const request = new InvokedRequest(inv, this.#log)
    let result: unknown
    const before = pollutionBefore()
    try {
      result = callAs(this.#owner, this.#methods, this.#methods[inv.command]!, inv.params, request)
    } catch (e) {
      return errorOutcome(errorRecordOf(this.#polluted(inv.command, before) ?? e, this.#development))
    }
    const polluted = this.#polluted(inv.command, before)
    if (polluted !== null) return errorOutcome(errorRecordOf(polluted, this.#development))
    if (isThenable(result)) {
      this.#live.add(request)
      return Promise.resolve(result).then(
        (value) => {
          const late = this.#polluted(inv.command, before)
          if (late !== null) return this.#settled(request, errorOutcome(errorRecordOf(late, this.#development)))
          const outcome = commandOutcome(value, request, this.#development)
          return isThenable(outcome) ? outcome.then((o) => this.#settled(request, o)) : this.#settled(request, outcome)
        },
        (e: unknown) => {
          this.#live.delete(request)
          return errorOutcome(errorRecordOf(e, this.#development))
        })
    }
    const outcome = commandOutcome(result, request, this.#development)
    if (isThenable(outcome)) {
      // An async generator: its first chunk is on its way.
      this.#live.add(request)
      return outcome.then((o) => this.#settled(request, o))
    }
    if (outcome.kind === 'stream') this.#follow(request, outcome.body)
    return outcome
  }

  /**
   * A command that added keys to a shared prototype (loader/pollution.ts): undone and logged, and
   * its request fails with the error returned here; null when it added none.
   */
  #polluted(command: string, before: ReturnType<typeof pollutionBefore>): Error | null {
    const keys = undoPollution(before)
    if (keys === null) return null
    const e = pollutionError(`${this.#owner.name}/${command}`, keys)
    this.#log.error({ err: e }, e.message)
    return e
  }

  #settled(request: InvokedRequest, outcome: Outcome): Outcome {
    if (outcome.kind === 'stream') outcome.body.once('close', () => this.#live.delete(request))
    else this.#live.delete(request)
    return outcome
  }

  /** A streamed body keeps its request cancellable until the stream closes. */
  #follow(request: InvokedRequest, body: Readable): void {
    this.#live.add(request)
    body.once('close', () => this.#live.delete(request))
  }

  cancel(id: string, reason: 'client-gone' | 'timeout' | 'shutdown'): void {
    this.#live.abort(id, cancelError(reason))
  }

  async canUnload(reason: UnloadReason): Promise<boolean> {
    const instance = this.#instance
    if (typeof instance.canUnload !== 'function') return true
    try { return instance.canUnload(reason) !== false } catch { return true }
  }

  dispose(reason: UnloadReason): Promise<void> {
    return this.#dispose(reason)
  }
}
