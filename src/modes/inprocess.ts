import { EXTENSION_BASE } from '../sdk/brand.ts'
import type { Extension } from '../sdk/extension.ts'
import type { UnloadReason } from '../sdk/types.ts'
import { instantiate } from '../loader/instantiate.ts'
import { callAs } from '../loader/owner.ts'
import { pollutionBefore, pollutionError, undoPollution } from '../loader/pollution.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { commandTable, type CommandTable } from '../dispatch/commands.ts'
import type { Executor, LoadSpec, LoadedModule } from './executor.ts'

/** A command that added keys to a shared prototype: undone, logged, and its request fails. */
function checkPollution(spec: LoadSpec, command: string, before: ReturnType<typeof pollutionBefore>): void {
  const keys = undoPollution(before)
  if (keys === null) return
  const e = pollutionError(`${spec.name}/${command}`, keys)
  spec.log.error({ err: e }, e.message)
  throw e
}

function rethrowMapped(e: unknown): never {
  throw mapErrorStack(e)
}

/** Runs extensions in the host's own process: esbuild bundle → vm.compileFunction → instance. */
export class InProcessExecutor implements Executor {
  readonly mode = 'inprocess' as const

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const { Handler, instance, inspected: table, inputs, dispose, owner } =
      await instantiate<Extension, CommandTable>(spec, EXTENSION_BASE, 'Extension', commandTable)
    const methods = instance as unknown as Record<string, (params: unknown, request: unknown) => unknown>
    return {
      table,
      inputs,
      sentinel: Handler,
      invoke(command, params, request) {
        // A synchronous command's value is returned as it is: no promise on the hot path.
        let result: unknown
        const before = pollutionBefore()
        try {
          // As the extension's own code: what the command leaves running stays traceable to it.
          result = callAs(owner, methods, methods[command.name]!, params, request)
        } catch (e) {
          throw mapErrorStack(e)
        } finally {
          checkPollution(spec, command.name, before)
        }
        if (result instanceof Promise) return result.then((v) => { checkPollution(spec, command.name, before); return v }, rethrowMapped)
        if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
          return Promise.resolve(result).then((v) => { checkPollution(spec, command.name, before); return v }, rethrowMapped)
        }
        return result
      },
      exportState: typeof instance.exportState === 'function' ? () => instance.exportState!() : undefined,
      importState: typeof instance.importState === 'function'
        ? async (state: unknown) => { try { await instance.importState!(state) } catch (e) { throw mapErrorStack(e) } }
        : undefined,
      canUnload(reason: UnloadReason) {
        if (typeof instance.canUnload !== 'function') return true
        try { return instance.canUnload(reason) !== false } catch { return true }
      },
      dispose,
    }
  }

  async close(): Promise<void> {}
}
