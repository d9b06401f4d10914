import { ownStatic } from '../own.ts'
import { FILTER_BASE } from '../sdk/brand.ts'
import type { Filter, FilterPriority } from '../sdk/filter.ts'
import type { Logger, UnloadReason } from '../sdk/types.ts'
import { instantiate } from '../loader/instantiate.ts'
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

/** Builds and evaluates a filter exactly as an extension is (esbuild → vm), then runs its init(). */
export async function loadFilter(spec: FilterLoadSpec): Promise<LoadedFilter> {
  const { instance, inspected, inputs, dispose } = await instantiate<Filter, { priority: FilterPriority; matches: PathMatcher | null }>(
    spec, FILTER_BASE, 'Filter', (Handler) => {
      const declared = ownStatic(Handler, 'priority')
      const priority = (declared ?? 'medium') as FilterPriority
      if (!PRIORITIES.includes(priority)) throw new TypeError(`${spec.entry}: static priority must be 'high', 'medium' or 'low', got ${JSON.stringify(declared)}`)
      return { priority, matches: compilePaths(ownStatic(Handler, 'paths')) }
    })
  return {
    name: spec.name, entry: spec.entry, generation: spec.generation, priority: inspected.priority,
    instance, matches: inspected.matches, inputs, dispose,
  }
}
