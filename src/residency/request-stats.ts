/** Latency bucket bounds in milliseconds for /_resident/metrics (exposed in seconds). */
export const LATENCY_BUCKETS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] as const

/** Where a latency falls: the index of the first bound ≥ ms (the last slot is +Inf). */
function bucketOf(ms: number): number {
  let i = 0
  while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++
  return i
}

/**
 * Per-extension request counts by status class and a latency histogram. Recorded on every
 * request's path, so plain array writes (no labels hashed, no objects made); prom-client reads
 * them when /_resident/metrics is scraped.
 */
export class RequestStats {
  /** Responses by status class: index 1–5 for 1xx–5xx, 0 for anything else. */
  readonly byClass = new Float64Array(6)
  /** Non-cumulative counts per latency bucket; the last is beyond the largest bound. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS_MS.length + 1)
  sumMs = 0
  count = 0

  record(ms: number, status: number): void {
    const c = (status / 100) | 0
    this.byClass[c >= 1 && c <= 5 ? c : 0]!++
    this.buckets[bucketOf(ms)]!++
    this.sumMs += ms
    this.count++
  }
}
