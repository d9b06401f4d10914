import client, { type Metric, type MetricValue } from 'prom-client'
import type { Registry } from '../residency/registry.ts'
import { LATENCY_BUCKETS_MS } from '../residency/request-stats.ts'
import type { Slot } from '../residency/slot.ts'

const CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const

/** The process metrics (CPU, memory, event loop lag, GC, handles): collected once per process, shared by every server in it. */
let processRegistry: client.Registry | null = null
function processMetrics(): client.Registry {
  if (processRegistry === null) {
    processRegistry = new client.Registry()
    client.collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/** What /_resident/metrics reads besides the registry: readiness, so the scrape can say it. */
export interface MetricsSources {
  registry: Registry
  ready: () => boolean
  filters: () => number
}

type Labels = { extension: string; mode: string }

/**
 * The latency histogram, read from each slot's RequestStats at scrape time: the hot path records
 * into plain arrays, and prom-client (not hand-written text) formats and, in a cluster, sums it.
 */
function latencyHistogram(sources: MetricsSources): Metric {
  const name = 'resident_request_duration_seconds'
  return {
    name,
    help: 'Time a request held its extension (command run and response sent), by extension and mode',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const values: MetricValue<string>[] = []
      for (const slot of sources.registry.slots.values()) {
        const labels: Labels = { extension: slot.name, mode: sources.registry.modeOf(slot.name) }
        let cumulative = 0
        for (let i = 0; i < slot.stats.buckets.length; i++) {
          cumulative += slot.stats.buckets[i]!
          const le = i < LATENCY_BUCKETS_MS.length ? String(LATENCY_BUCKETS_MS[i]! / 1000) : '+Inf'
          values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${name}_bucket` } as MetricValue<string>)
        }
        values.push({ labels, value: slot.stats.sumMs / 1000, metricName: `${name}_sum` } as MetricValue<string>)
        values.push({ labels, value: slot.stats.count, metricName: `${name}_count` } as MetricValue<string>)
      }
      return { name, help: 'Time a request held its extension', type: 'histogram', values, aggregator: 'sum' }
    },
  } as unknown as Metric
}

/**
 * Resident's metrics for one server: prom-client metrics whose values are read from the registry
 * when scraped (collect callbacks), plus load durations observed as loads happen. Nothing here
 * runs per request.
 */
export class Metrics {
  readonly register = new client.Registry()
  readonly #unsubscribe: () => void

  constructor(sources: MetricsSources) {
    const r = this.register
    const each = (fn: (slot: Slot, labels: Labels) => void) => {
      for (const slot of sources.registry.slots.values()) fn(slot, { extension: slot.name, mode: sources.registry.modeOf(slot.name) })
    }
    const ext = ['extension', 'mode'] as const

    new client.Counter({
      name: 'resident_requests_total', help: 'Requests answered by an extension, by status class',
      labelNames: [...ext, 'status_class'], registers: [r],
      collect() {
        this.reset()
        each((slot, l) => slot.stats.byClass.forEach((n, i) => { if (n > 0) this.inc({ ...l, status_class: CLASSES[i]! }, n) }))
      },
    })
    r.registerMetric(latencyHistogram(sources))
    new client.Gauge({
      name: 'resident_requests_in_flight', help: 'Requests holding the extension now', labelNames: ext, registers: [r],
      collect() { this.reset(); each((slot, l) => this.set(l, slot.inFlight)) },
    })
    new client.Gauge({
      name: 'resident_extension_generation', help: 'The resident generation (0 when not loaded)', labelNames: ext, registers: [r], aggregator: 'max',
      collect() { this.reset(); each((slot, l) => this.set(l, slot.current?.id ?? 0)) },
    })
    new client.Gauge({
      name: 'resident_extension_resident', help: '1 when the extension is loaded and serving (in a cluster: how many processes have it resident)', labelNames: ext, registers: [r],
      collect() { this.reset(); each((slot, l) => this.set(l, slot.current ? 1 : 0)) },
    })
    const loads = new client.Counter({ name: 'resident_extension_loads_total', help: 'Generations loaded and put into service', labelNames: ext, registers: [r] })
    const loadTime = new client.Histogram({
      name: 'resident_extension_load_duration_seconds', help: 'Build, evaluate and init time of each load', labelNames: ext, registers: [r],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    })
    this.#unsubscribe = sources.registry.subscribe((e) => {
      if (e.type !== 'installed') return
      const l = { extension: e.name, mode: sources.registry.modeOf(e.name) }
      loads.inc(l)
      loadTime.observe(l, (Date.now() - e.buildStartedAt) / 1000)
    })
    new client.Counter({
      name: 'resident_extension_unloads_total', help: 'Generations retired, by reason', labelNames: [...ext, 'reason'], registers: [r],
      collect() {
        this.reset()
        each((slot, l) => { for (const [reason, n] of Object.entries(slot.unloads)) if (n) this.inc({ ...l, reason }, n) })
      },
    })
    new client.Counter({
      name: 'resident_extension_errors_total', help: 'Failed loads and failed state carry-overs (failed requests are resident_requests_total{status_class="5xx"})', labelNames: ext, registers: [r],
      collect() { this.reset(); each((slot, l) => { if (slot.errors) this.inc(l, slot.errors) }) },
    })
    new client.Counter({
      name: 'resident_extension_leaks_suspected_total', help: 'Retired generations still not collected after the grace period and a full GC', labelNames: ext, registers: [r],
      collect() { this.reset(); each((slot, l) => { if (slot.leaksSuspected) this.inc(l, slot.leaksSuspected) }) },
    })
    new client.Gauge({
      name: 'resident_collection_verdicts', help: 'Retired generations by collection verdict: collected (proved), retained (leak suspected), awaiting', labelNames: ['verdict'], registers: [r],
      collect() {
        const c = sources.registry.collection
        this.set({ verdict: 'collected' }, c.totals.collected)
        this.set({ verdict: 'retained' }, c.totals.retained)
        this.set({ verdict: 'awaiting' }, c.waiting)
      },
    })
    new client.Gauge({
      name: 'resident_extension_collection_verdicts', help: 'Retired generations of the extension by collection verdict: collected (proved), retained (leak suspected), awaiting', labelNames: [...ext, 'verdict'], registers: [r],
      collect() {
        this.reset()
        for (const [name, t] of sources.registry.collection.byName) {
          const l = { extension: name, mode: sources.registry.modeOf(name) }
          this.set({ ...l, verdict: 'collected' }, t.collected)
          this.set({ ...l, verdict: 'retained' }, t.retained)
          this.set({ ...l, verdict: 'awaiting' }, t.watched - t.collected - t.retained)
        }
      },
    })
    new client.Counter({
      name: 'resident_evictions_total', help: 'Extensions unloaded by the host, by reason (idle timeout, memory pressure)', labelNames: ['reason'], registers: [r],
      collect() {
        this.reset()
        const ev = sources.registry.evictor.evictions
        this.inc({ reason: 'idle' }, ev.idle)
        this.inc({ reason: 'memory' }, ev.memory)
      },
    })
    new client.Gauge({
      name: 'resident_memory_pressure_ratio', help: 'The highest usage/limit ratio among heap, RSS/budget and cgroup (eviction starts at the high watermark)', labelNames: ['signal'], registers: [r], aggregator: 'max',
      collect() { this.reset(); const s = sources.registry.evictor.sample(); this.set({ signal: s.signal }, s.ratio) },
    })
    new client.Gauge({
      name: 'resident_ready', help: '1 when the server is ready for traffic (see /_resident/ready)', registers: [r], aggregator: 'min',
      collect() { this.set(sources.ready() ? 1 : 0) },
    })
    new client.Gauge({
      name: 'resident_filters_loaded', help: 'Filters in the running chain', registers: [r], aggregator: 'max',
      collect() { this.set(sources.filters()) },
    })
    processMetrics()
  }

  /** Every metric of this server and of the process, as prom-client's JSON (what a cluster primary sums). */
  async json(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>[]> {
    return [...await processMetrics().getMetricsAsJSON(), ...await this.register.getMetricsAsJSON()]
  }

  /** The Prometheus text exposition of this process. */
  async text(): Promise<string> {
    return client.Registry.merge([processMetrics(), this.register]).metrics()
  }

  /** The registries a cluster primary collects from this process (prom-client's cluster aggregation). */
  registries(): client.Registry[] {
    return [processMetrics(), this.register]
  }

  static readonly contentType = client.Registry.PROMETHEUS_CONTENT_TYPE

  close(): void {
    this.#unsubscribe()
  }
}
