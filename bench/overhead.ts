// Overhead of Resident against bare fastify doing the same work (issue 2's target: ≥ 0.90×), and
// of Resident's filter chain with 2 and 8 no-op filters (issue 3's target: ≥ 0.85× with 2).
// Each server runs in its own child process, started the same way and afresh for every round;
// autocannon drives them in alternation from this process, and the report gives medians and the
// ratios from this one run.
//
//   npm run bench:overhead -- [--rounds 3] [--duration 5] [--connections 32] [--only 'resident;npm start config']
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import pino from 'pino'
import { CSP, HEADERS } from '../filters/security-headers.ts'
import { isoNow } from '../src/filters/clock.ts'
import { pathToFileURL } from 'node:url'
import type { readConfigFile as ReadConfigFile, resolveConfig as ResolveConfig } from '../src/config/load.ts'
import type { createLogger as CreateLogger } from '../src/server/logger.ts'
import type { buildServer as BuildServer } from '../src/server/app.ts'

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    /** Target names to run, separated by semicolons (bare fastify, the baseline, always runs). */
    only: { type: 'string' },
  },
})

const root = process.cwd()

// The Resident servers run the built product (dist/, what `npm start` and `resident serve` run),
// not a bundle of the sources: the script runs `npm run build` first. A URL computed at run time
// keeps esbuild from bundling it.
async function product(): Promise<{ resolveConfig: typeof ResolveConfig; readConfigFile: typeof ReadConfigFile; buildServer: typeof BuildServer; createLogger: typeof CreateLogger }> {
  const dist = (file: string) => pathToFileURL(path.join(root, 'dist', file)).href
  const [{ resolveConfig, readConfigFile }, { buildServer }, { createLogger }] = await Promise.all([import(dist('config/load.js')), import(dist('server/app.js')), import(dist('server/logger.js'))])
  return { resolveConfig, readConfigFile, buildServer, createLogger }
}

// Add a target here to compare another set-up in the same run.
/** What each server process runs, and the issues' throughput target against bare fastify, if any. */
interface Target { path: string; goal?: number; start(): Promise<string> }

const targets: Record<string, Target> = {
  'bare fastify': {
    path: '/hello/greet?name=x',
    async start() {
      const app = Fastify({ logger: false })
      app.get('/hello/greet', async (request) => ({ hello: (request.query as { name?: string }).name ?? 'world' }))
      return app.listen({ port: 0, host: '127.0.0.1' })
    },
  },
  // What the shipped configuration's filters do, written as a fastify user would, without
  // Resident: the request id and security headers on every response (onSend), and the same access
  // entry through pino to the same buffered log file (onResponse). The part of `npm start config`'s
  // cost that comes with the features themselves, whoever runs them.
  'fastify doing the same work': {
    path: '/hello/greet?name=x',
    async start() {
      const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-log-'))
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
      process.once('SIGTERM', () => process.exit(0))
      const { createLogger } = await product()
      const log = createLogger({ logLevel: 'info', log: { file: path.join(dir, 'fastify.log'), buffer: 64 * 1024, flushInterval: 1000 } }, false).child({ filter: 'access-log' })
      const app = Fastify({ logger: false })
      const started = Symbol('started')
      // Callback hooks, the cheaper of fastify's two styles (no promise per hook), and Resident's
      // cached clock for the entry's time: nothing here is slower than in Resident.
      app.addHook('onRequest', (request, _reply, done) => { (request as unknown as Record<symbol, number>)[started] = performance.now(); done() })
      app.addHook('onSend', (request, reply, payload, done) => {
        reply.header('x-request-id', request.id)
        for (const name in SECURITY_HEADERS) if (reply.getHeader(name) === undefined) reply.header(name, SECURITY_HEADERS[name]!)
        done(null, payload)
      })
      app.addHook('onResponse', (request, reply, done) => {
        const status = reply.statusCode
        const e = {
          time: isoNow(), requestId: request.id, method: request.method, url: request.url, originalUrl: request.url,
          status, durationMs: Math.round((performance.now() - (request as unknown as Record<symbol, number>)[started]!) * 1000) / 1000,
          outcome: status >= 500 ? 'error' : status >= 400 ? 'client-error' : 'ok', clientAddress: request.ip,
          userAgent: request.headers['user-agent'], contentLength: Number(reply.getHeader('content-length')), user: undefined,
        }
        log.info({ access: e }, `${e.method} ${e.originalUrl} ${e.status} ${e.durationMs}ms`)
        done()
      })
      app.get('/hello/greet', async (request) => ({ hello: (request.query as { name?: string }).name ?? 'world' }))
      const url = await app.listen({ port: 0, host: '127.0.0.1' })
      const r = await fetch(`${url}/hello/greet?name=x`)
      if (r.headers.get('x-request-id') === null || r.headers.get('content-security-policy') !== CSP) throw new Error('the fastify target does not send the example filters\' headers')
      return url
    },
  },
  resident: {
    path: '/hello/greet?name=x',
    goal: 0.9,
    async start() {
      const { resolveConfig, buildServer } = await product()
      const config = resolveConfig({ extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'bench', 'no-filters'), logLevel: 'silent' }, { cwd: root })
      const server = await buildServer(config, { logger: pino({ level: 'silent' }) })
      return server.app.listen({ port: 0, host: '127.0.0.1' })
    },
  },
  // The same, tracing faults by stack only (config faultTracing): no async context on Node 20.
  'resident, faultTracing stack': {
    path: '/hello/greet?name=x',
    async start() {
      const { resolveConfig, buildServer } = await product()
      const config = resolveConfig({ extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(root, 'bench', 'no-filters'), logLevel: 'silent', faultTracing: 'stack' }, { cwd: root })
      const server = await buildServer(config, { logger: pino({ level: 'silent' }) })
      return server.app.listen({ port: 0, host: '127.0.0.1' })
    },
  },
  'resident + 2 no-op filters': { ...withNoopFilters(2), goal: 0.85 },
  'resident + 8 no-op filters': withNoopFilters(8),
  // What `npm start` runs: resident.config.json (five example filters, the access log among them,
  // request ids, memory budget) and the logger `resident serve` makes, buffered as configured. The
  // log goes to a file here, as it would in production (standard output is this terminal).
  'npm start config': { ...shippedConfig({}), goal: 0.85 },
  'npm start config, log unbuffered': shippedConfig({ buffer: 0 }),
  'npm start config w/o access-log': shippedConfig({}, ['access-log']),
  // Where the access log's cost goes: the same line as text (no nested object for pino to
  // serialise), and the JSON line built but not written (the logger's level drops it).
  'npm start config, access-log combined': shippedConfig({}, [], { 'access-log': { config: { format: 'combined' } } }),
  'npm start config, log level warn': shippedConfig({}, [], {}, 'warn'),
  'npm start config, faultTracing stack': shippedConfig({}, [], {}, undefined, 'stack'),
}

// The example security-headers filter's own headers, for the fastify target.
const SECURITY_HEADERS: Record<string, string> = { ...HEADERS, 'content-security-policy': CSP }

function shippedConfig(log: Record<string, unknown>, disable: string[] = [], override: Record<string, unknown> = {}, logLevel?: string, faultTracing?: string): Target {
  return {
    path: '/hello/greet?name=x',
    async start() {
      const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-log-'))
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
      process.once('SIGTERM', () => process.exit(0))
      const { readConfigFile, resolveConfig, buildServer, createLogger } = await product()
      const { input, file } = readConfigFile(undefined, root)
      const filters = input.filters as { modules?: Record<string, unknown> }
      const modules = { ...filters.modules, ...override, ...Object.fromEntries(disable.map((n) => [n, { enabled: false }])) }
      const config = resolveConfig({ ...input, ...(logLevel ? { logLevel } : {}), ...(faultTracing ? { faultTracing } : {}), filters: { ...filters, modules }, log: { ...(input.log as object), file: path.join(dir, 'resident.log'), ...log } }, { cwd: root, file })
      const server = await buildServer(config, { logger: createLogger(config, false) })
      if (server.filters.current.filters.length !== 5 - disable.length) throw new Error(`expected ${5 - disable.length} of the example filters`)
      return server.app.listen({ port: 0, host: '127.0.0.1' })
    },
  }
}

// A no-op filter implements the notifications every request passes through on both sides
// (onRequest, onAuthenticate, onSendResponse) and does nothing in them: the cost of the chain itself.
const NOOP_FILTER = `import { Filter } from 'resident-host'
export default class Noop extends Filter {
  onRequest() {}
  onAuthenticate() {}
  onSendResponse() {}
}`

function withNoopFilters(n: number): Target {
  return {
    path: '/hello/greet?name=x',
    async start() {
      const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-filters-'))
      for (let i = 1; i <= n; i++) writeFileSync(path.join(dir, `noop-${i}.ts`), NOOP_FILTER)
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
      process.once('SIGTERM', () => process.exit(0))
      const { resolveConfig, buildServer } = await product()
      const config = resolveConfig({ extensionsDir: path.join(root, 'extensions'), filtersDir: dir, logLevel: 'silent' }, { cwd: root })
      const server = await buildServer(config, { logger: pino({ level: 'silent' }) })
      if (server.filters.current.filters.length !== n) throw new Error(`expected ${n} filters`)
      return server.app.listen({ port: 0, host: '127.0.0.1' })
    },
  }
}

async function serve(role: string): Promise<void> {
  process.once('SIGTERM', () => process.exit(0)) // exit normally, so --cpu-prof and exit hooks run
  const target = targets[role]
  if (!target) throw new Error(`unknown role ${role}`)
  const url = await target.start()
  // CPU time per request is far steadier than req/s on a shared machine: the parent asks before and after each load.
  process.on('message', (m) => { if (m === 'cpu') { const c = process.cpuUsage(); process.send!({ cpu: c.user + c.system }) } })
  process.send!({ url })
}

function spawnServer(role: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean), process.argv[1]!, '--role', role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.once('message', (m) => resolve({ child, url: (m as { url: string }).url }))
    child.once('exit', (code) => reject(new Error(`${role} server exited with ${code}`)))
  })
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    child.once('exit', () => resolve())
    child.kill()
  })
}

interface Sample { rps: number; p50: number; p99: number; errors: number; non2xx: number; cpuUs: number }

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'cpu' in m) { child.off('message', on); resolve((m as { cpu: number }).cpu) }
    }
    child.on('message', on)
    child.send('cpu')
  })
}

async function load(url: string, duration: number, connections: number, child?: ChildProcess): Promise<Sample> {
  const before = child ? await cpuOf(child) : 0
  const r = await autocannon({ url, duration, connections, pipelining: 1 })
  const after = child ? await cpuOf(child) : 0
  const cpuUs = r.requests.total > 0 ? (after - before) / r.requests.total : 0
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, cpuUs }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  if (opts.role) return serve(opts.role)
  const rounds = Number(opts.rounds)
  const duration = Number(opts.duration)
  const connections = Number(opts.connections)
  const only = opts.only?.split(';').map((x) => x.trim())
  const names = Object.keys(targets).filter((n, i) => i === 0 || !only || only.includes(n))
  const samples = new Map<string, Sample[]>(names.map((n) => [n, []]))
  // Every round starts every server afresh: how V8 optimises a process's hot path differs from one
  // process to the next by more than the differences measured here, and one process per target
  // for the whole run would carry one draw of that luck into every round.
  for (let round = 1; round <= rounds; round++) {
    for (const name of round % 2 ? names : [...names].reverse()) {
      const { child, url } = await spawnServer(name)
      try {
        await load(url + targets[name]!.path, 1, connections) // warm-up
        const s = await load(url + targets[name]!.path, duration, connections, child)
        samples.get(name)!.push(s)
        console.log(`round ${round} ${name.padEnd(28)} ${s.rps.toFixed(0).padStart(7)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  ${s.cpuUs.toFixed(1)} µs CPU/req  errors ${s.errors}  non-2xx ${s.non2xx}`)
      } finally {
        await stop(child)
      }
    }
  }
  const baseSamples = samples.get(names[0]!)!
  const base = median(baseSamples.map((s) => s.rps))
  const cpuBase = median(baseSamples.map((s) => s.cpuUs))
  console.log(`\n${rounds} rounds × ${duration} s, ${connections} connections, medians:`)
  console.log(`${'target'.padEnd(28)} ${'req/s'.padStart(8)} ${'p50'.padStart(5)} ${'p99'.padStart(5)}  vs ${names[0]}  paired  CPU µs/req  CPU vs ${names[0]}  paired`)
  const verdicts: string[] = []
  for (const name of names) {
    const s = samples.get(name)!
    const rps = median(s.map((x) => x.rps))
    const cpu = median(s.map((x) => x.cpuUs))
    // Paired: the median over rounds of this round's ratio, which cancels the machine's drift
    // between rounds (each round measures every target back to back).
    const paired = median(s.map((x, i) => x.rps / baseSamples[i]!.rps))
    // CPU ratios are inverted (base / this) so that, like req/s ratios, 1.00× = as cheap and lower = costlier.
    const cpuPaired = median(s.map((x, i) => baseSamples[i]!.cpuUs / x.cpuUs))
    const goal = targets[name]!.goal
    if (goal !== undefined) verdicts.push(`${name}: target ≥ ${goal.toFixed(2)}× ${names[0]} — ${rps / base >= goal ? 'met' : 'NOT met'} by the ratio of medians (${(rps / base).toFixed(2)}×), ${paired >= goal ? 'met' : 'NOT met'} paired (${paired.toFixed(2)}×)`)
    console.log(`${name.padEnd(28)} ${rps.toFixed(0).padStart(8)} ${String(median(s.map((x) => x.p50))).padStart(5)} ${String(median(s.map((x) => x.p99))).padStart(5)}  ${(rps / base).toFixed(2).padStart(11)}×  ${paired.toFixed(2).padStart(5)}×  ${cpu.toFixed(1).padStart(10)}  ${(cpuBase / cpu).toFixed(2).padStart(15)}×  ${cpuPaired.toFixed(2).padStart(5)}×`)
  }
  if (verdicts.length > 0) console.log(`\n${verdicts.join('\n')}`)
}

await main()
