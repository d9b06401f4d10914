import type { Registry } from '../residency/registry.ts'
import type { Logger } from '../sdk/types.ts'

/** Something else that reloads as a whole on SIGHUP (the filter chain plugs in here). */
export interface ReloadAllTarget { reloadAll(): Promise<unknown> }

export interface ReloadSummary { reloaded: string[]; failed: string[]; ms: number }

/**
 * Reloads every loaded extension (and the other targets) the graceful way: each new generation is
 * built beside the old one, which drains and is disposed; a failure keeps the old one serving.
 */
export async function reloadAll(registry: Registry, log: Logger, others: ReloadAllTarget[] = []): Promise<ReloadSummary> {
  const started = performance.now()
  const names = [...registry.slots.values()].filter((s) => s.current).map((s) => s.name)
  const results = await Promise.allSettled(names.map((n) => registry.reload(n)))
  const others_ = await Promise.allSettled(others.map((o) => o.reloadAll()))
  const summary: ReloadSummary = {
    reloaded: names.filter((_, i) => results[i]!.status === 'fulfilled'),
    failed: names.filter((_, i) => results[i]!.status === 'rejected'),
    ms: Math.round(performance.now() - started),
  }
  for (const r of others_) if (r.status === 'rejected') log.error({ err: r.reason }, 'reload failed')
  const failed = summary.failed.length > 0 ? `; failed (old generation kept): ${summary.failed.join(', ')}` : ''
  log.info(summary, `reloaded ${summary.reloaded.length} extension(s) in ${summary.ms} ms${failed}`)
  return summary
}

/** SIGHUP → reloadAll; reloads triggered while one runs are merged into one more run. */
export function reloadOnSighup(registry: Registry, log: Logger, others: ReloadAllTarget[] = []): () => void {
  let running: Promise<unknown> | null = null
  let again = false
  const onHup = () => {
    log.info('SIGHUP: reloading every extension')
    if (running) { again = true; return }
    const run = (): Promise<unknown> => reloadAll(registry, log, others).finally(() => {
      if (again) { again = false; running = run() } else running = null
    })
    running = run()
  }
  process.on('SIGHUP', onHup)
  return () => { process.off('SIGHUP', onHup) }
}
