import path from 'node:path'
import * as sdk from '../sdk/index.ts'
import { extendsBase } from '../sdk/brand.ts'
import type { Logger, UnloadReason } from '../sdk/types.ts'
import { createHostHandle } from './host-handle.ts'
import type { BuildOutput } from './build.ts'
import { evaluateBundle } from './evaluate.ts'
import { registerOwner, runAs, type Owner } from './owner.ts'
import { pollutionBefore, pollutionError, undoPollution } from './pollution.ts'
import { mapErrorStack, registerSourceMap } from './stack.ts'

export interface InstantiateSpec {
  name: string
  entry: string
  generation: number
  config: Record<string, unknown>
  log: Logger
}

interface Lifecycle {
  init?(): unknown
  dispose?(reason: UnloadReason): unknown
}

export interface Instantiated<T, P> {
  /** The default-exported class: the sentinel whose collection proves the code was freed. */
  Handler: Function
  instance: T
  /** What `inspect` derived from the class before it was constructed. */
  inspected: P
  /** Absolute paths of every file the build read: what a watcher must watch. */
  inputs: string[]
  /** Whose code this is: commands run as it, so what they leave behind stays traceable (owner.ts). */
  owner: Owner
  /**
   * Heap + external bytes that evaluation, construction and init() added (the build excluded), and
   * whether the reading is clean: no other load evaluated or initialised during an await in
   * between (their bytes would count too) and no GC ran meanwhile (what it freed would count
   * against: `collected`).
   */
  growth: LoadGrowth
  /** Runs the instance's dispose(reason), then releases its host handle and its source map. */
  dispose(reason: UnloadReason): Promise<void>
}

/**
 * Builds a module (esbuild → vm.compileFunction in the main context; `prebuilt` skips the build), checks that its default
 * export extends the base named by `brand`, lets `inspect` read the class, constructs it with its
 * host handle and runs init(). Extensions and filters load through this one path; on any failure
 * everything made so far is released and the error's stack is mapped to the sources.
 */
export async function instantiate<T extends Lifecycle, P>(
  spec: InstantiateSpec, brand: symbol, baseName: string, inspect: (Handler: Function) => P,
  /** A bundle built earlier (the CGI runner reads it from its disk cache instead of running esbuild). */
  prebuilt?: BuildOutput,
): Promise<Instantiated<T, P>> {
  // esbuild is loaded on first use, so a process that only runs prebuilt bundles never loads it.
  const build = prebuilt ?? await (await import('./build.ts')).buildEntry(spec.entry)
  const filename = `${spec.entry}?gen=${spec.generation}`
  const dir = path.dirname(spec.entry)
  const owner: Owner = { kind: baseName === 'Filter' ? 'filter' : 'extension', name: spec.name, generation: spec.generation }
  const forgetMap = registerSourceMap(filename, build.map, dir)
  const forgetOwner = registerOwner(filename, owner)
  const owned = createHostHandle({ name: spec.name, generation: spec.generation, dir, config: spec.config, log: spec.log })
  const forget = () => { forgetMap(); forgetOwner() }
  let measuring: { close(): LoadGrowth } | null = null
  try {
    // Evaluation, construction and init() run as the module's own code: timers, promises and
    // emitters they create stay traceable to this generation.
    const before = pollutionBefore()
    // Measured here, not around the whole load: the build's await is where other loads run.
    measuring = openWindow()
    const { Handler, instance, inspected } = await runAs(owner, async () => {
      const exports = await evaluateBundle(build.shape, { entry: spec.entry, filename, sdk }) as { default?: unknown }
      const Handler = (exports.default ?? exports) as unknown
      if (!extendsBase(Handler, brand)) {
        throw new TypeError(`${spec.entry}: the default export must be a class extending ${baseName} from 'resident-host'`)
      }
      const inspected = inspect(Handler)
      const instance = new (Handler as unknown as new (host: unknown) => T)(owned.handle)
      if (typeof instance.init === 'function') await instance.init()
      const polluted = undoPollution(before)
      if (polluted !== null) throw pollutionError(`${spec.name}: evaluating it or its init()`, polluted)
      return { Handler, instance, inspected }
    })
    const growth = measuring.close()
    return {
      Handler, instance, inspected, inputs: build.inputs, owner, growth,
      dispose(reason) {
        return runAs(owner, async () => {
          try {
            if (typeof instance.dispose === 'function') await instance.dispose(reason)
          } catch (e) {
            spec.log.error({ err: mapErrorStack(e) }, `${spec.name}: dispose() threw`)
          } finally {
            await owned.release()
            forget()
          }
        })
      },
    }
  } catch (e) {
    measuring?.close()
    mapErrorStack(e)
    await owned.release()
    forget()
    throw e
  }
}

export interface LoadGrowth {
  bytes: number
  clean: boolean
  /** A GC ran meanwhile: what it freed counts against the reading, which is then only a lower bound. */
  collected: boolean
}

/**
 * Heap used and external memory, from process.memoryUsage(): node:v8's heap statistics would load
 * node:stream with it, a few ms for the cgi mode's process per request.
 */
function jsMemory(): { heapUsed: number; external: number } {
  const { heapUsed, external } = process.memoryUsage()
  return { heapUsed, external }
}

/** Loads between evaluation and the end of init() now, and how many have started so far. */
let open = 0
let opened = 0

/** Starts measuring one load's growth; close() ends it (once). */
function openWindow(): { close(): LoadGrowth } {
  const before = jsMemory()
  const mine = ++opened
  // Loads already between their evaluation and the end of their init(): they may add during this one's.
  const already = open++
  let closed: LoadGrowth | null = null
  return {
    close() {
      if (closed) return closed
      open--
      const after = jsMemory()
      const beside = already + (opened - mine)
      // Used heap or external memory that fell while this load only added to them: a GC ran.
      const collected = after.heapUsed < before.heapUsed || after.external < before.external
      const bytes = Math.max(0, after.heapUsed + after.external - before.heapUsed - before.external)
      closed = { bytes, clean: beside === 0 && !collected, collected }
      return closed
    },
  }
}
