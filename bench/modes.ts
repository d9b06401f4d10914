// The same extension (extensions/hello.ts, command greet) in each mode, as users run it: the real
// `resident serve --mode <mode>` in a fresh process per mode and round (no filters, no idle
// unloads), the modes alternated in one run. Throughput (autocannon, many connections), latency
// (one connection, sequential requests timed to the microsecond), CPU per request of the server's
// process tree (its worker threads included) and its RSS, read from /proc.
// Targets (issue 14): worker ≥ 0.6× in-process throughput, and p50 added by the worker ≤ 0.2 ms.
//
//   npm run bench:modes -- [--rounds 3] [--duration 5] [--connections 32] [--latency 3000] [--modes inprocess,worker]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { treeCpuSeconds, treeRssBytes } from '../src/bench/proc.ts'
import { MODES as ALL_MODES, modeTarget, type BenchMode } from '../src/bench/targets/modes.ts'
import type { BenchContext, RunningTarget } from '../src/bench/targets/types.ts'

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    latency: { type: 'string', default: '3000' },
    // The first is the baseline. fastcgi and cgi run too, but their costs are another scale (bench:fastcgi, bench:cgi).
    modes: { type: 'string', default: 'inprocess,worker' },
  },
})

const root = process.cwd()
const MODES = opts.modes.split(',') as BenchMode[]
for (const m of MODES) if (!(ALL_MODES as readonly string[]).includes(m)) { console.error(`unknown mode "${m}" (modes: ${ALL_MODES.join(', ')})`); process.exit(2) }

/** `n` sequential requests on one keep-alive connection, each timed: µs. */
async function latencies(url: string, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const out: number[] = []
  const once = () => new Promise<void>((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    http.get(url, { agent }, (res) => {
      res.resume()
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
        out.push(Number(process.hrtime.bigint() - t0) / 1000)
        resolve()
      })
    }).on('error', reject)
  })
  for (let i = 0; i < n; i++) await once()
  agent.destroy()
  return out
}

interface Sample { rps: number; cpuUs: number; hostUs: number; rssMb: number; p50: number; p99: number; non2xx: number }

/**
 * CPU seconds of the server's main thread alone (the host's event loop: HTTP, filters, routing,
 * and in process the command too). With a core to spare for the worker, this thread is what
 * bounds the throughput of the worker mode.
 */
function mainThreadCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks: 100 per second on Linux
}

const pct = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]! }
const median = (xs: number[]) => pct(xs, 0.5)

async function measure(target: RunningTarget): Promise<Sample> {
  const url = target.request.url
  const duration = Number(opts.duration)
  const connections = Number(opts.connections)
  await autocannon({ url, duration: 1, connections }) // warm-up: loads the extension, optimises the path
  const [pid] = target.roots()
  const cpu0 = treeCpuSeconds(target.roots())
  const host0 = mainThreadCpuSeconds(pid!)
  const r = await autocannon({ url, duration, connections, pipelining: 1 })
  const cpu1 = treeCpuSeconds(target.roots())
  const host1 = mainThreadCpuSeconds(pid!)
  const rss = treeRssBytes(target.roots())
  await latencies(url, 200) // warm the single connection
  const lat = await latencies(url, Number(opts.latency))
  return {
    rps: r.requests.average, cpuUs: r.requests.total > 0 ? ((cpu1 - cpu0) * 1e6) / r.requests.total : 0,
    hostUs: r.requests.total > 0 ? ((host1 - host0) * 1e6) / r.requests.total : 0,
    rssMb: rss / 1024 ** 2, p50: pct(lat, 0.5), p99: pct(lat, 0.99), non2xx: r.non2xx + r.errors,
  }
}

async function main(): Promise<void> {
  const rounds = Number(opts.rounds)
  const scratch = mkdtempSync(path.join(tmpdir(), 'resident-bench-modes-'))
  const ctx: BenchContext = {
    extensionsDir: path.join(root, 'extensions'), extension: 'hello', command: 'greet', params: [['name', 'x']], method: 'GET',
    scratch, bin: path.join(root, 'bin', 'resident.js'), config: null, extensionsGiven: true,
  }
  const samples = new Map<string, Sample[]>(MODES.map((m) => [m, []]))
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const mode of round % 2 ? MODES : [...MODES].reverse()) {
        const target = await modeTarget(mode).start(ctx, round)
        try {
          const s = await measure(target)
          samples.get(mode)!.push(s)
          console.log(`round ${round} ${mode.padEnd(10)} ${s.rps.toFixed(0).padStart(7)} req/s  ${s.cpuUs.toFixed(1)} µs CPU/req (host thread ${s.hostUs.toFixed(1)})  RSS ${s.rssMb.toFixed(0)} MB  ` +
            `1 connection: p50 ${(s.p50 / 1000).toFixed(3)} ms  p99 ${(s.p99 / 1000).toFixed(3)} ms  failed ${s.non2xx}`)
        } finally {
          await target.stop()
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  const [baseName] = MODES
  const base = samples.get(baseName!)!
  console.log(`\n${rounds} rounds × ${opts.duration} s at ${opts.connections} connections, then ${opts.latency} sequential requests on 1 connection; medians:`)
  console.log(`${'mode'.padEnd(10)} ${'req/s'.padStart(8)}  vs ${baseName}  paired  ${'CPU µs/req'.padStart(10)}  ${'host thread'.padStart(11)}  ${'RSS MB'.padStart(6)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  p50 added ms`)
  const verdicts: string[] = []
  for (const mode of MODES) {
    const s = samples.get(mode)!
    const rps = median(s.map((x) => x.rps))
    const paired = median(s.map((x, i) => x.rps / base[i]!.rps))
    const added = median(s.map((x, i) => x.p50 - base[i]!.p50)) / 1000
    console.log(`${mode.padEnd(10)} ${rps.toFixed(0).padStart(8)}  ${(rps / median(base.map((x) => x.rps))).toFixed(2).padStart(11)}×  ${paired.toFixed(2).padStart(5)}×  ` +
      `${median(s.map((x) => x.cpuUs)).toFixed(1).padStart(10)}  ${median(s.map((x) => x.hostUs)).toFixed(1).padStart(11)}  ${median(s.map((x) => x.rssMb)).toFixed(0).padStart(6)}  ${(median(s.map((x) => x.p50)) / 1000).toFixed(3).padStart(7)}  ` +
      `${(median(s.map((x) => x.p99)) / 1000).toFixed(3).padStart(7)}  ${added.toFixed(3).padStart(12)}`)
    if (mode === 'worker') {
      const ofMedians = rps / median(base.map((x) => x.rps))
      verdicts.push(`worker throughput: target ≥ 0.60× in-process — ${paired >= 0.6 || ofMedians >= 0.6 ? 'met' : 'NOT met'} (ratio of medians ${ofMedians.toFixed(2)}×, paired ${paired.toFixed(2)}×)`)
      verdicts.push(`worker p50 added: target ≤ 0.200 ms — ${added <= 0.2 ? 'met' : 'NOT met'} (${added.toFixed(3)} ms)`)
    }
  }
  if (verdicts.length > 0) console.log(`\n${verdicts.join('\n')}`)
}

await main()
