import { DevWatcher, type DevWatcherOptions } from '../../src/watch/dev-watcher.ts'
import { startTestServer, type TestServer } from './server.ts'

export interface WatchedServer extends TestServer { watcher: DevWatcher }

/** A test server with `resident dev`'s watcher running over its folders. */
export async function startWatchedServer(
  o: Parameters<typeof startTestServer>[0] = {},
  w: Partial<DevWatcherOptions> = {},
): Promise<WatchedServer> {
  const t = await startTestServer(o)
  // Let the files just written age past the watcher's clock-skew margin, so that the first load
  // is not taken for one that may have missed a write (which would reload once more).
  await new Promise((r) => setTimeout(r, 40))
  const watcher = new DevWatcher({ registry: t.server.registry, config: t.server.config, log: t.server.log, quietMs: 40, filters: t.server.filters, ...w })
  await watcher.start()
  const close = t.close
  return Object.assign(t, {
    watcher,
    async close() { await watcher.close(); await close() },
  })
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as NonNullable<T>
    } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** An extension whose `v` command answers `version`. */
export const versioned = (version: number | string, extra = ''): string => `import { Extension } from 'resident-host'
export default class V extends Extension {
  v() { return { v: ${JSON.stringify(version)} } }
${extra}
}
`
