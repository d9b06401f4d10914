// The same extension (extensions/hello.ts, command greet) in each mode, started the same way and
// alternated in one run: throughput (autocannon, many connections), latency (one connection,
// sequential requests timed to the microsecond), CPU per request and RSS of the server process.
// Targets (issue 14): worker ≥ 0.6× in-process throughput, and p50 added by the worker ≤ 0.2 ms.
// Each server runs in its own child process, started afresh every round.
//
//   npm run bench:modes -- [--rounds 3] [--duration 5] [--connections 32] [--latency 3000]
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pino from 'pino'
import type { resolveConfig as ResolveConfig } from '../src/config/load.ts'
import type { buildServer as BuildServer } from '../src/server/app.ts'

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    latency: { type: 'string', default: '3000' },
  },
})

const root = process.cwd()
const PATH = '/hello/greet?name=x'
// Add a mode here once it runs hello.greet (the first one is the baseline).
const MODES = ['inprocess', 'worker']

// The built product, as `resident serve` runs it (the script runs `npm run build` first).
async function product(): Promise<{ resolveConfig: typeof ResolveConfig; buildServer: typeof BuildServer }> {
  const dist = (file: string) => pathToFileURL(path.join(root, 'dist', file)).href
  const [{ resolveConfig }, { buildServer }] = await Promise.all([import(dist('config/load.js')), import(dist('server/app.js'))])
  return { resolveConfig, buildServer }
}

async function serve(mode: string): Promise<void> {
  process.once('SIGTERM', () => process.exit(0))
  const { resolveConfig, buildServer } = await product()
  const config = resolveConfig({ extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'bench', 'no-filters'), logLevel: 'silent', mode }, { cwd: root })
  const server = await buildServer(config, { logger: pino({ level: 'silent' }) })
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' })
  // CPU covers every thread of the process (a worker's too); RSS likewise.
  process.on('message', (m) => {
    if (m === 'usage') { const c = process.cpuUsage(); process.send!({ cpu: c.user + c.system, rss: process.memoryUsage.rss() }) }
  })
  process.send!({ url })
}

function spawnServer(mode: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1]!, '--role', mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.once('message', (m) => resolve({ child, url: (m as { url: string }).url }))
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)))
  })
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    child.once('exit', () => resolve())
    child.kill()
  })
}

function usage(child: ChildProcess): Promise<{ cpu: number; rss: number }> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'cpu' in m) { child.off('message', on); resolve(m as { cpu: number; rss: number }) }
    }
    child.on('message', on)
    child.send('usage')
  })
}

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

interface Sample { rps: number; cpuUs: number; rssMb: number; p50: number; p99: number; non2xx: number }

const pct = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]! }
const median = (xs: number[]) => pct(xs, 0.5)

async function measure(url: string, child: ChildProcess): Promise<Sample> {
  const duration = Number(opts.duration)
  const connections = Number(opts.connections)
  await autocannon({ url, duration: 1, connections }) // warm-up: loads the extension, optimises the path
  const before = await usage(child)
  const r = await autocannon({ url, duration, connections, pipelining: 1 })
  const after = await usage(child)
  await latencies(url, 200) // warm the single connection
  const lat = await latencies(url, Number(opts.latency))
  return {
    rps: r.requests.average, cpuUs: r.requests.total > 0 ? (after.cpu - before.cpu) / r.requests.total : 0,
    rssMb: after.rss / 1024 ** 2, p50: pct(lat, 0.5), p99: pct(lat, 0.99), non2xx: r.non2xx + r.errors,
  }
}

async function main(): Promise<void> {
  if (opts.role) return serve(opts.role)
  const rounds = Number(opts.rounds)
  const samples = new Map<string, Sample[]>(MODES.map((m) => [m, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const mode of round % 2 ? MODES : [...MODES].reverse()) {
      const { child, url } = await spawnServer(mode)
      try {
        const s = await measure(url + PATH, child)
        samples.get(mode)!.push(s)
        console.log(`round ${round} ${mode.padEnd(10)} ${s.rps.toFixed(0).padStart(7)} req/s  ${s.cpuUs.toFixed(1)} µs CPU/req  RSS ${s.rssMb.toFixed(0)} MB  ` +
          `1 connection: p50 ${(s.p50 / 1000).toFixed(3)} ms  p99 ${(s.p99 / 1000).toFixed(3)} ms  failed ${s.non2xx}`)
      } finally {
        await stop(child)
      }
    }
  }
  const [baseName] = MODES
  const base = samples.get(baseName!)!
  console.log(`\n${rounds} rounds × ${opts.duration} s at ${opts.connections} connections, then ${opts.latency} sequential requests on 1 connection; medians:`)
  console.log(`${'mode'.padEnd(10)} ${'req/s'.padStart(8)}  vs ${baseName}  paired  ${'CPU µs/req'.padStart(10)}  ${'RSS MB'.padStart(6)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  p50 added ms`)
  const verdicts: string[] = []
  for (const mode of MODES) {
    const s = samples.get(mode)!
    const rps = median(s.map((x) => x.rps))
    const paired = median(s.map((x, i) => x.rps / base[i]!.rps))
    const added = median(s.map((x, i) => x.p50 - base[i]!.p50)) / 1000
    console.log(`${mode.padEnd(10)} ${rps.toFixed(0).padStart(8)}  ${(rps / median(base.map((x) => x.rps))).toFixed(2).padStart(11)}×  ${paired.toFixed(2).padStart(5)}×  ` +
      `${median(s.map((x) => x.cpuUs)).toFixed(1).padStart(10)}  ${median(s.map((x) => x.rssMb)).toFixed(0).padStart(6)}  ${(median(s.map((x) => x.p50)) / 1000).toFixed(3).padStart(7)}  ` +
      `${(median(s.map((x) => x.p99)) / 1000).toFixed(3).padStart(7)}  ${added.toFixed(3).padStart(12)}`)
    if (mode === 'worker') {
      verdicts.push(`worker throughput: target ≥ 0.60× in-process — ${paired >= 0.6 ? 'met' : 'NOT met'} (paired ${paired.toFixed(2)}×)`)
      verdicts.push(`worker p50 added: target ≤ 0.200 ms — ${added <= 0.2 ? 'met' : 'NOT met'} (${added.toFixed(3)} ms)`)
    }
  }
  if (verdicts.length > 0) console.log(`\n${verdicts.join('\n')}`)
}

await main()
