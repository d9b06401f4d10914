import path from 'node:path'
import * as sdk from '../sdk/index.ts'
import { FILTER_BASE, extendsBase } from '../sdk/brand.ts'
import type { Filter, FilterPriority } from '../sdk/filter.ts'
import type { Logger, UnloadReason } from '../sdk/types.ts'
import { buildEntry } from '../loader/build.ts'
import { evaluateBundle } from '../loader/evaluate.ts'
import { mapErrorStack, registerSourceMap } from '../loader/stack.ts'
import { createHostHandle } from '../residency/host-handle.ts'
import { compilePaths, type PathMatcher } from './paths.ts'

export interface FilterLoadSpec {
  name: string
  entry: string
  generation: number
  config: Record<string, unknown>
  log: Logger
}

/** One loaded generation of a filter. */
export interface LoadedFilter {
  readonly name: string
  readonly entry: string
  readonly generation: number
  readonly priority: FilterPriority
  readonly instance: Filter
  /** null = every request. */
  readonly matches: PathMatcher | null
  /** Absolute paths of every file the build read: what a watcher must watch. */
  readonly inputs: readonly string[]
  dispose(reason: UnloadReason): Promise<void>
}

const PRIORITIES: readonly FilterPriority[] = ['high', 'medium', 'low']
type FilterClass = new (host: sdk.FilterHost) => Filter

/** Builds and evaluates a filter exactly as an extension is (esbuild → vm), then runs its init(). */
export async function loadFilter(spec: FilterLoadSpec): Promise<LoadedFilter> {
  const build = await buildEntry(spec.entry)
  const filename = `${spec.entry}?gen=${spec.generation}`
  const forgetMap = registerSourceMap(filename, build.map, path.dirname(spec.entry))
  const owned = createHostHandle({ name: spec.name, generation: spec.generation, dir: path.dirname(spec.entry), config: spec.config, log: spec.log })
  try {
    const exports = evaluateBundle(build.code, { entry: spec.entry, filename, sdk }) as { default?: unknown }
    const Handler = (exports.default ?? exports) as unknown
    if (!extendsBase(Handler, FILTER_BASE)) {
      throw new TypeError(`${spec.entry}: the default export must be a class extending Filter from 'resident'`)
    }
    const statics = Handler as unknown as { priority?: unknown; paths?: unknown }
    const priority = (statics.priority ?? 'medium') as FilterPriority
    if (!PRIORITIES.includes(priority)) throw new TypeError(`${spec.entry}: static priority must be 'high', 'medium' or 'low', got ${JSON.stringify(statics.priority)}`)
    const matches = compilePaths(statics.paths)
    const instance = new (Handler as unknown as FilterClass)(owned.handle)
    if (typeof instance.init === 'function') await instance.init()
    return {
      name: spec.name, entry: spec.entry, generation: spec.generation, priority, instance, matches, inputs: build.inputs,
      async dispose(reason) {
        try {
          if (typeof instance.dispose === 'function') await instance.dispose(reason)
        } catch (e) {
          spec.log.error({ err: mapErrorStack(e) }, 'filter dispose() threw')
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
