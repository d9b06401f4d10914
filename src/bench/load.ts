// One load of a bench target, from autocannon's programmatic API.
import autocannon from 'autocannon'

export interface LoadRequest {
  url: string
  method: string
  body?: Buffer
  headers?: Record<string, string>
}

export interface LoadResult {
  requests: number
  reqPerSec: number
  /** Latency percentiles in milliseconds. */
  p50: number
  p90: number
  p99: number
  /** Connection errors and timeouts. */
  errors: number
  /** Answers outside 2xx. */
  non2xx: number
  /** What the errors were: each distinct message (at most a few) and how often it came. */
  errorKinds: Record<string, number>
}

const MAX_ERROR_KINDS = 5

// autocannon's own latency histogram has 1 ms resolution; in-process answers take a fraction of
// that, so the percentiles come from each 2xx response's own time (ms, sub-millisecond precision).
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

export async function runLoad(req: LoadRequest, seconds: number, connections: number): Promise<LoadResult> {
  let times = new Float64Array(1 << 16)
  let n = 0
  let instance!: autocannon.Instance
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
      url: req.url,
      method: req.method as autocannon.Request['method'],
      body: req.body,
      headers: req.headers,
      duration: seconds,
      connections,
      pipelining: 1,
      timeout: 30,
    }, (err, result) => (err ? reject(err) : resolve(result)))
  })
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status < 200 || status > 299) return
    if (n === times.length) { const grown = new Float64Array(n * 2); grown.set(times); times = grown }
    times[n++] = ms
  })
  const errorKinds: Record<string, number> = Object.create(null)
  instance.on('reqError', (e: Error) => {
    const kind = (e as NodeJS.ErrnoException).code ?? e.message
    if (kind in errorKinds || Object.keys(errorKinds).length < MAX_ERROR_KINDS) errorKinds[kind] = (errorKinds[kind] ?? 0) + 1
  })
  const r = await done
  const sorted = times.subarray(0, n).sort()
  return {
    requests: r.requests.total,
    reqPerSec: r.duration > 0 ? r.requests.total / r.duration : 0,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    errorKinds: { ...errorKinds, ...(r.timeouts > 0 ? { timeout: r.timeouts } : {}) },
  }
}
