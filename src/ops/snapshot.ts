import type { ResidentConfig } from '../config/types.ts'
import type { FilterManager } from '../filters/manager.ts'
import type { ModeProcess } from '../modes/processes.ts'
import { listModules } from '../loader/discover.ts'
import type { Registry } from '../residency/registry.ts'
import { Slot } from '../residency/slot.ts'
import { extensionStatus, hostStatus } from '../residency/status.ts'
import type { History, Trend } from './history.ts'

export interface ProcessSnapshot {
  generatedAt: string
  host: ReturnType<typeof hostStatus> & { ready: boolean; lifecycle: string }
  extensions: Array<ReturnType<typeof extensionStatus> & { trend: Trend; responses5xx: number }>
  filters: ReturnType<FilterManager['status']>
  /** Worker/pool processes of an out-of-process mode (see src/modes/processes.ts). */
  modeProcesses: ModeProcess[]
}

/** What the dashboard needs of one server process: the status JSON plus readiness, trends and mode processes. */
export interface SnapshotSources {
  config: ResidentConfig
  registry: Registry
  filters?: FilterManager
  history: History
  ready: () => boolean
  lifecycle: () => string
}

/** One process's state; extensions in the folder that were never loaded are listed as unloaded. */
export async function processSnapshot(s: SnapshotSources): Promise<ProcessSnapshot> {
  s.history.sample(s.registry)
  const slots = new Map(s.registry.slots)
  for (const name of await listModules(s.config.extensionsDir).catch(() => [] as string[])) {
    if (!slots.has(name)) slots.set(name, new Slot(name, ''))
  }
  return {
    generatedAt: new Date().toISOString(),
    host: { ...hostStatus(s.registry, s.config), ready: s.ready(), lifecycle: s.lifecycle() },
    extensions: [...slots.values()]
      .map((slot) => ({ ...extensionStatus(s.registry, slot), trend: s.history.trend(slot.name), responses5xx: slot.stats.byClass[5]! }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    filters: s.filters?.status() ?? [],
    modeProcesses: s.registry.processes(),
  }
}
