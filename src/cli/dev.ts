import path from 'node:path'
import { DEFAULT_CONFIG_FILE } from '../config/defaults.ts'
import { DevWatcher } from '../watch/dev-watcher.ts'
import { reloadOnSighup } from '../watch/reload-all.ts'
import { handleFaults } from '../server/faults.ts'
import type { ServeFlags } from './args.ts'
import { loadConfig, startServer, stopOnSignals } from './serve.ts'

export type DevFlags = ServeFlags & { quiet?: string }

/**
 * `resident dev`: serve in development mode (pretty logs, stacks in error bodies) and reload what a
 * save touches, in place.
 */
export async function startDev(flags: DevFlags, quietMs: number): Promise<void> {
  const start = { flags, env: process.env, cwd: process.cwd(), development: true }
  const { server } = await startServer(start)
  const log = server.log
  const filters = server.filters
  const watcher = new DevWatcher({
    registry: server.registry, config: server.config, log, quietMs, filters,
    rereadConfig: () => loadConfig(start),
    // Without --config, where the default file would be: creating it later applies it.
    configFile: server.config.file ?? (flags.config ? null : path.resolve(start.cwd, DEFAULT_CONFIG_FILE)),
  })
  await watcher.start()
  // Every extension is built and loaded now: a broken one is reported at once, not on its first request.
  const broken = await watcher.preloadAll()
  if (broken.length > 0) log.warn(`${broken.length} extension${broken.length === 1 ? '' : 's'} failed to load: ${broken.join(', ')} (the reasons are above); fix and save to load ${broken.length === 1 ? 'it' : 'them'}`)
  log.info(`watching for changes (${quietMs} ms quiet period); save a file to reload it`)
  const stopHup = reloadOnSighup(server.registry, log, [filters])
  const close = server.close.bind(server)
  server.close = async () => {
    stopHup()
    await watcher.close()
    await close()
  }
  handleFaults(server)
  stopOnSignals(server)
}
