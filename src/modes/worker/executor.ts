import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { workerSettingsOf } from '../../config/modes.ts'
import { buildEntry } from '../../loader/build.ts'
import type { Executor, LoadSpec, LoadedModule } from '../executor.ts'
import type { ExecutorContext } from '../executors.ts'
import { WorkerPool } from './pool.ts'

/**
 * The worker's script. The built host runs `dist/modes/worker/entry.js` beside this file; the
 * TypeScript sources (under vitest) use the built one too, since Node 20 cannot run `.ts` in a
 * Worker — `npm test` builds first.
 */
function workerScript(): URL {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.js')) return new URL('./entry.js', import.meta.url)
  const built = path.resolve(path.dirname(here), '../../../dist/modes/worker/entry.js')
  if (!existsSync(built)) throw new Error(`the worker mode needs the built worker script ${built}; run "npm run build"`)
  return pathToFileURL(built)
}

/**
 * Runs each extension in a pool of worker threads. The host builds the bundle (keeping the one
 * esbuild service); each worker evaluates it in its own isolate, so a crash, a hang or a leak
 * stays with that worker.
 */
export class WorkerExecutor implements Executor {
  readonly mode = 'worker' as const
  readonly #ctx: ExecutorContext
  readonly #script: URL

  constructor(ctx: ExecutorContext) {
    this.#ctx = ctx
    this.#script = workerScript()
  }

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const build = await buildEntry(spec.entry)
    const { config } = this.#ctx
    return WorkerPool.start({
      script: this.#script,
      init: {
        name: spec.name, entry: spec.entry, generation: spec.generation, config: spec.config, development: spec.development,
        shape: build.shape, map: build.map, inputs: build.inputs, level: spec.log.level,
      },
      settings: workerSettingsOf(config, spec.name),
      rapidFail: config.rapidFail,
      log: spec.log,
      disposeTimeout: Math.min(config.drainTimeout, 10_000),
    })
  }

  async close(): Promise<void> {}
}
