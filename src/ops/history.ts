import type { Registry } from '../residency/registry.ts'

const LENGTH = 60

/** One extension's recent samples, oldest first: p50 and p99 latency (ms) and requests per second. */
export interface Trend { p50: Array<number | null>; p99: Array<number | null>; rps: number[] }

/**
 * The last minute of each extension's latency and rate, for the dashboard's sparklines. Sampled
 * at most once a second, and only when someone looks (a page or an event stream): nothing runs
 * for it while nobody does.
 */
export class History {
  readonly #trends = new Map<string, Trend & { lastTotal: number }>()
  #lastAt = 0

  sample(registry: Registry, now = Date.now()): void {
    if (now - this.#lastAt < 900) return
    const seconds = this.#lastAt === 0 ? 1 : (now - this.#lastAt) / 1000
    this.#lastAt = now
    for (const slot of registry.slots.values()) {
      let t = this.#trends.get(slot.name)
      if (!t) { t = { p50: [], p99: [], rps: [], lastTotal: slot.requestsTotal }; this.#trends.set(slot.name, t) }
      const p = slot.latency.percentiles()
      push(t.p50, p.p50)
      push(t.p99, p.p99)
      push(t.rps, Math.round(((slot.requestsTotal - t.lastTotal) / seconds) * 10) / 10)
      t.lastTotal = slot.requestsTotal
    }
    for (const name of this.#trends.keys()) if (!registry.slots.has(name)) this.#trends.delete(name)
  }

  trend(name: string): Trend {
    const t = this.#trends.get(name)
    return t ? { p50: t.p50, p99: t.p99, rps: t.rps } : { p50: [], p99: [], rps: [] }
  }
}

function push<T>(xs: T[], x: T): void {
  xs.push(x)
  if (xs.length > LENGTH) xs.shift()
}
