import path from 'node:path'
import * as sdk from '../sdk/index.ts'
import { EXTENSION_BASE, extendsBase } from '../sdk/brand.ts'
import type { Extension } from '../sdk/extension.ts'
import type { UnloadReason } from '../sdk/types.ts'
import { buildEntry } from '../loader/build.ts'
import { evaluateBundle } from '../loader/evaluate.ts'
import { mapErrorStack, registerSourceMap } from '../loader/stack.ts'
import { commandTable } from '../dispatch/commands.ts'
import { createHostHandle } from '../residency/host-handle.ts'
import type { Executor, LoadSpec, LoadedModule } from './executor.ts'

type ExtensionClass = new (host: sdk.ExtensionHost) => Extension

function rethrowMapped(e: unknown): never {
  throw mapErrorStack(e)
}

/** Runs extensions in the host's own process: esbuild bundle → vm.compileFunction → instance. */
export class InProcessExecutor implements Executor {
  readonly mode = 'inprocess' as const

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const build = await buildEntry(spec.entry)
    const filename = `${spec.entry}?gen=${spec.generation}`
    const forgetMap = registerSourceMap(filename, build.map, path.dirname(spec.entry))
    const owned = createHostHandle({ name: spec.name, generation: spec.generation, dir: path.dirname(spec.entry), config: spec.config, log: spec.log })
    try {
      const exports = evaluateBundle(build.code, { entry: spec.entry, filename, sdk }) as { default?: unknown }
      const Handler = (exports.default ?? exports) as unknown
      if (!extendsBase(Handler, EXTENSION_BASE)) {
        throw new TypeError(`${spec.entry}: the default export must be a class extending Extension from 'resident'`)
      }
      const table = commandTable(Handler)
      const instance = new (Handler as unknown as ExtensionClass)(owned.handle)
      if (typeof instance.init === 'function') await instance.init()
      const methods = instance as unknown as Record<string, (params: unknown, request: unknown) => unknown>
      return {
        table,
        inputs: build.inputs,
        sentinel: Handler,
        invoke(command, params, request) {
          // Not an async function: one promise per call instead of three on the hot path.
          try {
            const result = methods[command.name]!(params, request)
            return result instanceof Promise ? result.catch(rethrowMapped) : Promise.resolve(result)
          } catch (e) {
            return Promise.reject(mapErrorStack(e))
          }
        },
        canUnload(reason: UnloadReason) {
          if (typeof instance.canUnload !== 'function') return true
          try { return instance.canUnload(reason) !== false } catch { return true }
        },
        async dispose(reason: UnloadReason) {
          try {
            if (typeof instance.dispose === 'function') await instance.dispose(reason)
          } catch (e) {
            spec.log.error({ err: mapErrorStack(e) }, 'dispose() threw')
          } finally {
            await owned.release()
            forgetMap()
          }
        },
      }
    } catch (e) {
      mapErrorStack(e)
      await owned.release()
      forgetMap()
      throw e
    }
  }

  async close(): Promise<void> {}
}
