import { performance } from 'node:perf_hooks'
import type { ResidentConfig } from '../config/types.ts'
import type { Registry } from './registry.ts'
import type { Slot } from './slot.ts'
import { forcedGc } from './collection.ts'

const mb = (n: number) => Math.round((n / 1024 ** 2) * 10) / 10

/** A monotonic `performance.now()` time as an ISO date. */
const wallClock = (ms: number) => new Date(performance.timeOrigin + ms).toISOString()

/** The status JSON's `host` part: memory signals, watermarks, evictions. Sizes in bytes plus MB. */
export function hostStatus(registry: Registry, config: ResidentConfig) {
  const s = registry.evictor.sample()
  const { memory } = config
  return {
    pid: process.pid,
    node: process.version,
    mode: registry.mode,
    uptimeSeconds: Math.round(process.uptime()),
    memory: {
      heapUsed: s.heapUsed,
      heapLimit: s.heapLimit,
      rss: s.rss,
      processesRss: s.processesRss,
      peakRss: registry.evictor.peakRss,
      budget: memory.budget,
      cgroup: s.cgroup,
      /** The highest usage/limit ratio among heap, RSS/budget and cgroup, and which one it is. */
      pressure: { ratio: Math.round(s.ratio * 1000) / 1000, signal: s.signal },
      highWatermark: memory.highWatermark,
      lowWatermark: memory.lowWatermark,
      checkIntervalMs: memory.checkInterval,
      minResidencyMs: memory.minResidency,
      summary: `heap ${mb(s.heapUsed)}/${mb(s.heapLimit)} MB, rss ${mb(s.rss)} MB${s.processesRss > 0 ? ` + ${mb(s.processesRss)} MB in mode processes` : ''}${memory.budget ? ` of ${mb(memory.budget)} MB budget` : ''}`,
    },
    idleTimeoutMs: config.idleTimeout,
    evictions: {
      ...registry.evictor.evictions,
      total: registry.evictor.evictions.idle + registry.evictor.evictions.memory,
      /** Times eviction stopped because it did not bring usage down, and why it is waiting now. */
      backoffs: registry.evictor.backoffs,
      state: registry.evictor.overBudget?.state ?? 'ok',
      overBudget: registry.evictor.overBudget,
      /** Loads that waited for room under the limit, and those that went ahead over it. */
      admission: { ...registry.evictor.admission },
    },
    forcedGc: { count: forcedGc.count, ms: Math.round(forcedGc.ms), forEviction: forcedGc.eviction, forAdmission: forcedGc.admission, forCollectionProof: forcedGc.collection },
    collection: { ...registry.collection.totals, awaitingVerdict: registry.collection.waiting, graceMs: config.unload.collectionGrace },
  }
}

/** One entry of the status JSON's `extensions` array (name, state, mode, generation, requests, lastUsed, retired are fixed). */
export function extensionStatus(registry: Registry, slot: Slot) {
  const gen = slot.current
  const exact = gen?.module.memory?.() ?? null
  return {
    name: slot.name,
    state: slot.state,
    mode: registry.modeOf(slot.name),
    generation: gen?.id ?? null,
    loadedAt: gen ? wallClock(gen.loadedAtMs) : null,
    lastUsed: slot.lastUsed ? wallClock(slot.lastUsed) : null,
    requests: { total: slot.requestsTotal, inFlight: slot.inFlight },
    /** Requests answered with a 5xx for this extension, and loads that failed. */
    errors: slot.errors,
    loadFailures: slot.loadFailures,
    reloadsWithoutOverlap: slot.reloadsWithoutOverlap,
    lastError: slot.lastError && { ...slot.lastError, at: slot.lastError.at.toISOString() },
    /** Every generation ever created is exactly one of these: created = current + loading + draining + retired. */
    generations: slot.ledger,
    /** Commands of the current generation still running after their request was answered 504. */
    abandoned: gen?.abandoned ?? 0,
    /** Exceptions its code raised outside any request; each retired the generation that raised it. */
    faults: { count: slot.faults, last: slot.lastFault ? { ...slot.lastFault, at: slot.lastFault.at.toISOString() } : null },
    latencyMs: slot.latency.percentiles(),
    loadMs: slot.loadMs,
    /** heapUsed + external before vs after the load: other activity in the process blurs it. */
    heapGrowth: { bytes: slot.heapGrowth, estimate: true },
    /** Exactly what the generation holds, in modes that can measure it (a worker's own isolate); null in process. */
    memory: exact,
    /** What its mode reports of itself (a worker pool: workers, restarts…); null in process. */
    runtime: gen?.module.status?.() ?? null,
    idleTimeoutMs: registry.idleTimeoutOf(slot.name),
    draining: [...slot.draining].map((g) => ({ generation: g.id, reason: g.retired, inFlight: g.inflight, abandoned: g.abandoned })),
    unloads: { ...slot.unloads },
    declines: slot.declines,
    leaksSuspected: slot.leaksSuspected,
    failed: slot.rapid.failed
      ? { retryAt: new Date(slot.rapid.retryAt).toISOString(), trips: slot.rapid.trips }
      : null,
    retired: slot.retired.map((r) => ({ generation: r.generation, reason: r.reason, at: r.at.toISOString(), collected: r.collected })),
  }
}
