// Residency under memory pressure: peak RSS / budget, failed requests, evictions, cold-load p50/p99.
// `node bench/run.js memory [--scenario synthetic|examples] [--extensions 64] [--size-mb 16] [--budget-mb 256]
//   [--duration 30] [--concurrency 1] [--churn] [--churn-interval 25] [--min-residency 1s]`
// --scenario synthetic (default): 64 extensions each holding 16 MB under a 256 MB RSS budget, random
// traffic spread evenly over all of them, so nearly every request is a cold load (a thrash test).
// --scenario examples: what `npm start` serves (the shipped resident.config.json, its filters and the
// example extensions) with `cache` holding --size-mb (default 48) under --budget-mb (default 160);
// the clients take turns on /cache/stats, /calc/add and /counter/increment, and the churn unloads,
// loads and reloads calc, hello and cache: the scenario that leaked generations.
// --churn: one more client POSTs admin unload, load and reload to the extensions in turn while the
// traffic runs (the interleavings that leaked generations); the run then also reports external
// memory (ArrayBuffers) after a forced GC against its baseline, back-offs, and the generation ledger.
// The server runs in a child process (its RSS is what counts); this process only sends requests.
// Baseline for the latency ratio: warm requests to resident extensions, measured in the same run.
// Also printed: what was alive at the highest RSS sampled, and the server's CPU time per request and
// per load (a fairer figure than latencies on a busy machine). BENCH_TRACE=1: a line every 100 ms.
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { readConfigFile, resolveConfig, type ConfigInput } from '../src/config/load.ts'
import { InProcessExecutor } from '../src/modes/inprocess.ts'
import { buildServer } from '../src/server/app.ts'
import { forcedGc } from '../src/residency/collection.ts'

const { values } = parseArgs({
  allowPositionals: true,
  options: {
    child: { type: 'boolean', default: false },
    scenario: { type: 'string', default: 'synthetic' },
    extensions: { type: 'string', default: '64' },
    'size-mb': { type: 'string' },
    'budget-mb': { type: 'string' },
    duration: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '1' },
    churn: { type: 'boolean', default: false },
    'churn-interval': { type: 'string', default: '25' },
    // memory.minResidency: the default keeps a just-loaded extension 1 s; 0 lets a load evict any idle one.
    'min-residency': { type: 'string', default: '1s' },
  },
})
const name = (i: number) => `ext${String(i).padStart(2, '0')}`
const examples = values.scenario === 'examples'
if (!examples && values.scenario !== 'synthetic') throw new Error(`--scenario: synthetic or examples, not ${values.scenario}`)
const count = Number(values.extensions)
const sizeMb = Number(values['size-mb'] ?? (examples ? 48 : 16))
const budgetMb = Number(values['budget-mb'] ?? (examples ? 160 : 256))
const root = process.cwd()
/** What the clients request, and which extensions the churn unloads, loads and reloads in turn. */
const traffic = examples
  ? { paths: ['/cache/stats', '/calc/add?a=1&b=2', '/counter/increment'], churned: ['calc', 'hello', 'cache'] }
  : { paths: [] as string[], churned: Array.from({ length: count }, (_, i) => name(i)) }

const pctl = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

if (values.child) await child()
else await parent()

/** The server: a temp folder of extensions, Resident with the budget, RSS sampled every 5 ms. */
async function child(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-memory-'))
  for (let i = 0; i < (examples ? 0 : count); i++) {
    writeFileSync(path.join(dir, `${name(i)}.ts`), `import { Extension } from 'resident-host'
export default class Holder extends Extension {
  chunks: Buffer[] = []
  disposed = false
  override init() { for (let i = 0; i < ${sizeMb}; i++) this.chunks.push(Buffer.alloc(1024 * 1024, ${i % 250} + 1)) }
  // A request served by a generation already unloaded would be a failure, not a success.
  hit() { if (this.disposed) throw new Error('served by a disposed generation'); return { n: this.chunks.length, g: this.host.generation } }
  override dispose() { this.disposed = true; this.chunks = [] }
}`)
  }
  const loads: number[] = []
  const inner = new InProcessExecutor()
  const executor = {
    mode: inner.mode,
    async load(spec: Parameters<InProcessExecutor['load']>[0]) {
      const t0 = performance.now()
      try { return await inner.load(spec) } finally { loads.push(performance.now() - t0) }
    },
    close: () => inner.close(),
  }
  const memory = { budget: `${budgetMb}MB`, checkInterval: '1s', minResidency: values['min-residency'] }
  const config = examples ? shippedConfig(memory) : resolveConfig({
    extensionsDir: dir, filtersDir: path.join(dir, 'no-filters'), idleTimeout: 0,
    memory, unload: { collectionGrace: '5s' },
  }, { cwd: dir })
  // The examples' access log writes every request, as under npm start (to /dev/null here).
  const logger = examples && !process.env.BENCH_LOG
    ? pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }))
    : pino({ level: process.env.BENCH_LOG ?? 'error' })
  const server = await buildServer(config, { executors: { inprocess: executor }, logger })
  // Cold load as a request sees it: acquire() of an extension that was not resident (queueing,
  // lookup, build, evaluate, init, and any eviction work it waited behind).
  const { registry } = server
  const acquire = registry.acquire.bind(registry)
  const cold: number[] = []
  const coldBy: Record<string, number[]> = {}
  registry.acquire = async (n: string) => {
    if (registry.slots.get(n)?.current) return acquire(n)
    const t0 = performance.now()
    try { return await acquire(n) } finally {
      const ms = performance.now() - t0
      cold.push(ms)
      if (examples) (coldBy[n] ??= []).push(ms)
    }
  }
  // Extensions resident now that hold --size-mb of Buffers: every one in the synthetic scenario, `cache` in the examples.
  const holders = () => {
    let n = 0
    for (const [key, slot] of registry.slots) if (slot.current && (!examples || key === 'cache')) n++
    return n
  }
  // Time loads spent in admission (waiting for room or for a GC), apart from the load itself.
  const admitting: number[] = []
  const admit = registry.evictor.admit.bind(registry.evictor)
  registry.evictor.admit = async (slot) => {
    const t0 = performance.now()
    try { return await admit(slot) } finally { admitting.push(performance.now() - t0) }
  }
  const rssAtStart = process.memoryUsage.rss()
  // Where the peak comes from: at the highest RSS sampled (every 10 ms), what was alive then.
  let atPeak = { rss: 0, resident: 0, holding: 0, loading: 0, draining: 0, arrayBuffers: 0, heapUsed: 0, heapTotal: 0 }
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss()
    if (rss <= atPeak.rss) return
    const m = process.memoryUsage()
    let resident = 0, loading = 0, draining = 0
    for (const slot of registry.slots.values()) { if (slot.current) resident++; loading += slot.loadingGens.size + (slot.loading ? 1 : 0); draining += slot.draining.size }
    atPeak = { rss, resident, holding: holders(), loading, draining, arrayBuffers: m.arrayBuffers, heapUsed: m.heapUsed, heapTotal: m.heapTotal }
  }, 10)
  sampler.unref()
  // BENCH_TRACE=1: a line every 100 ms on stderr (RSS, ArrayBuffers, resident extensions, admission, evictions).
  if (process.env.BENCH_TRACE) {
    const t0 = performance.now()
    const trace = setInterval(() => {
      const m = process.memoryUsage()
      let resident = 0
      for (const slot of registry.slots.values()) if (slot.current) resident++
      const mib = (n: number) => (n / 1024 ** 2).toFixed(0)
      console.error(`${(performance.now() - t0).toFixed(0)} ms: rss ${mib(m.rss)} MB, arrayBuffers ${mib(m.arrayBuffers)} MB, heap ${mib(m.heapUsed)}/${mib(m.heapTotal)} MB, ` +
        `${resident} resident, admission ${JSON.stringify(registry.evictor.admission)}, ${registry.evictor.evictions.memory} evicted`)
    }, 100)
    trace.unref()
  }
  // How long a turn of the event loop waits: every await on a load's path costs about this much.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 })
  let cpuAtStart = process.cpuUsage()
  const address = await server.app.listen({ port: 0, host: '127.0.0.1' })
  process.send!({ address, rssAtStart })
  const external = () => {
    if (typeof globalThis.gc === 'function') { globalThis.gc(); globalThis.gc() }
    const m = process.memoryUsage()
    return { arrayBuffers: m.arrayBuffers, external: m.external }
  }
  const ledger = () => {
    const l = { created: 0, current: 0, loading: 0, draining: 0, retired: 0 }
    for (const slot of registry.slots.values()) for (const [k, v] of Object.entries(slot.ledger)) l[k as keyof typeof l] += v
    return l
  }
  process.on('message', async (msg) => {
    // The traffic starts now: CPU time is counted from here.
    if (msg === 'baseline') { process.send!({ ...external(), holders: holders() }); cpuAtStart = process.cpuUsage(); loopDelay.enable(); return }
    loopDelay.disable()
    const rss = process.memoryUsage.rss()
    const evictions = { ...registry.evictor.evictions, backoffs: registry.evictor.backoffs, admission: registry.evictor.admission }
    // Let the churn's last retirements finish before the external memory is read.
    for (let i = 0; i < 200; i++) {
      const l = ledger()
      if (l.loading + l.draining === 0) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const mem = { ...external(), holders: holders() }
    const collection = { ...registry.collection.totals, waiting: registry.collection.waiting, gcs: forcedGc.count, gcMs: forcedGc.ms, gcEviction: forcedGc.eviction, gcAdmission: forcedGc.admission, gcCollection: forcedGc.collection }
    const c = process.cpuUsage(cpuAtStart)
    process.send!({ peak: Math.max(peakRss(), registry.evictor.peakRss), rss, atPeak, cpuMs: (c.user + c.system) / 1000, evictions, collection, loads, cold, coldBy, admitting, mem, loopDelay: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6 }, ledger: ledger() })
    await server.close()
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  })
}

/** The shipped resident.config.json with the bench's memory settings and `cache`'s size. */
function shippedConfig(memory: ConfigInput) {
  const { input, file } = readConfigFile(undefined, root)
  const extensions = (input.extensions ?? {}) as Record<string, Record<string, unknown>>
  const cache = extensions.cache ?? {}
  return resolveConfig({
    ...input,
    memory: { ...(input.memory as ConfigInput), ...memory },
    extensions: { ...extensions, cache: { ...cache, config: { ...(cache.config as ConfigInput), sizeMB: sizeMb } } },
  }, { cwd: root, file })
}

/** The kernel's high-water mark of this process's RSS (exact, free); sampled RSS elsewhere. */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1]) * 1024
  } catch { /* not Linux */ }
  return process.memoryUsage.rss()
}

async function parent(): Promise<void> {
  const duration = Number(values.duration) * 1000
  const concurrency = Number(values.concurrency)
  const proc: ChildProcess = fork(process.argv[1]!, ['--child', ...process.argv.slice(2)], { execArgv: ['--expose-gc', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_TRACE_GC ? ['--trace-gc'] : [])] })
  const next = () => new Promise<Record<string, unknown>>((resolve) => proc.once('message', (m) => resolve(m as Record<string, unknown>)))
  const { address, rssAtStart } = await next() as { address: string; rssAtStart: number }

  // What client i requests next: its own path in turn (examples), or any extension at random (synthetic).
  const target = (i: number) => examples ? traffic.paths[i % traffic.paths.length]! : `/${name(Math.floor(Math.random() * count))}/hit`
  // Warm baseline: resident extensions hit repeatedly (ext00, or each of the examples' paths).
  const warmPaths = examples ? traffic.paths : [`/${name(0)}/hit`]
  const warm: number[] = []
  for (const p of warmPaths) await fetch(`${address}${p}`).then((r) => r.arrayBuffer())
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now()
    await fetch(`${address}${warmPaths[i % warmPaths.length]}`).then((r) => r.arrayBuffer())
    warm.push(performance.now() - t0)
  }

  proc.send('baseline')
  const baseline = await next() as { arrayBuffers: number; external: number; holders: number }

  const latencies: number[] = []
  let failed = 0, total = 0
  const failures = new Map<number, number>()
  const end = Date.now() + duration
  const admin = { total: 0, failed: 0 }
  // The churn client: unload, load, reload, each extension in turn, one action every interval.
  async function churn(): Promise<void> {
    if (!values.churn) return
    const actions = ['unload', 'load', 'reload'] as const
    const interval = Number(values['churn-interval'])
    for (let i = 0; Date.now() < end; i++) {
      const churned = traffic.churned
      const n = churned[i % churned.length]!, action = actions[Math.floor(i / churned.length) % 3]!
      try {
        const r = await fetch(`${address}/_resident/extensions/${n}/${action}`, { method: 'POST', headers: { 'x-resident-admin': '1' } })
        await r.arrayBuffer()
        if (r.status !== 200) admin.failed++
      } catch { admin.failed++ }
      admin.total++
      await new Promise((r) => setTimeout(r, interval))
    }
  }
  await Promise.all([...Array.from({ length: concurrency }, async (_, client) => {
    while (Date.now() < end) {
      const t0 = performance.now()
      let status = 0
      try {
        const r = await fetch(`${address}${target(client)}`)
        await r.arrayBuffer()
        status = r.status
      } catch { status = -1 }
      latencies.push(performance.now() - t0)
      total++
      if (status !== 200) { failed++; failures.set(status, (failures.get(status) ?? 0) + 1) }
    }
  }), churn()])
  const done = next()
  proc.send('stop')
  const r = await done as { peak: number; rss: number; cpuMs: number; atPeak: { rss: number; resident: number; holding: number; loading: number; draining: number; arrayBuffers: number; heapUsed: number; heapTotal: number }; evictions: { idle: number; memory: number; backoffs: number; admission: { waited: number; overBudget: number } }; mem: { arrayBuffers: number; external: number; holders: number }; ledger: Record<string, number>; collection: { watched: number; collected: number; retained: number; waiting: number; gcs: number; gcMs: number; gcEviction: number; gcAdmission: number; gcCollection: number }; loads: number[]; admitting: number[]; loopDelay: { p50: number; p99: number }; cold: number[]; coldBy: Record<string, number[]> }
  const budget = budgetMb * 1024 ** 2
  const mb = (n: number) => (n / 1024 ** 2).toFixed(1)
  const f = (n: number) => n.toFixed(1)
  const ratio = r.peak / budget
  const coldP99 = pctl(r.cold, 0.99)
  console.log(`\nmemory bench: ${examples ? `the shipped config's examples, cache ${sizeMb} MB` : `${count} extensions × ${sizeMb} MB (${count * sizeMb} MB if all resident)`}, budget ${budgetMb} MB, ` +
    `${values.duration} s of ${examples ? `traffic on ${traffic.paths.join(', ')}` : 'random traffic'}, ${concurrency} concurrent, minResidency ${values['min-residency']}${values.churn ? `, churn every ${values['churn-interval']} ms` : ''}`)
  console.log(`  server RSS: at start ${mb(rssAtStart)} MB, peak ${mb(r.peak)} MB → peak/budget ${ratio.toFixed(2)} (target ≤ 1.2) ${ratio <= 1.2 ? 'OK' : 'OVER'}`)
  const p = r.atPeak
  console.log(`    at the highest RSS sampled (${mb(p.rss)} MB): ${p.resident} resident, ${p.loading} loading, ${p.draining} draining; ` +
    `arrayBuffers ${mb(p.arrayBuffers)} MB (${mb(p.arrayBuffers - p.holding * sizeMb * 1024 ** 2)} MB beyond the ${p.holding} resident holding ${sizeMb} MB), heap ${mb(p.heapUsed)} MB used of ${mb(p.heapTotal)} MB`)
  console.log(`  server CPU: ${f(r.cpuMs / Math.max(1, total))} ms per request, ${f(r.cpuMs / Math.max(1, r.loads.length))} ms per load (${f(r.cpuMs / 1000)} s over the run)`)
  console.log(`  requests: ${total}, failed ${failed}${failed ? ` ${JSON.stringify(Object.fromEntries(failures))}` : ''} (target 0) ${failed === 0 ? 'OK' : 'FAIL'}`)
  const seconds = duration / 1000
  console.log(`  evictions: ${r.evictions.memory} memory (${(r.evictions.memory / seconds).toFixed(1)}/s), ${r.evictions.idle} idle; back-offs ${r.evictions.backoffs}; loads ${r.loads.length} (${r.evictions.admission.waited} waited for room, ${r.evictions.admission.overBudget} went ahead over budget); forced GCs ${r.collection.gcs} (${r.collection.gcEviction} judging eviction rounds, ${r.collection.gcAdmission} for loads waiting for retired generations' memory, ${r.collection.gcCollection} for collection proofs; ${f(r.collection.gcMs / Math.max(1, r.collection.gcs))} ms each)`)
  console.log(`  cold load as requests saw it (${r.cold.length}): p50 ${f(pctl(r.cold, 0.5))} ms, p99 ${f(coldP99)} ms (target p99 ≤ 50) ${coldP99 <= 50 ? 'OK' : 'OVER'}`)
  for (const [n, xs] of Object.entries(r.coldBy)) console.log(`    ${n} (${xs.length}): p50 ${f(pctl(xs, 0.5))} ms, p99 ${f(pctl(xs, 0.99))} ms`)
  console.log(`    of which executor.load (build + evaluate + init): p50 ${f(pctl(r.loads, 0.5))} ms, p99 ${f(pctl(r.loads, 0.99))} ms`)
  console.log(`    admission (waiting for room or a GC): p50 ${f(pctl(r.admitting, 0.5))} ms, p99 ${f(pctl(r.admitting, 0.99))} ms`)
  console.log(`  event loop delay (a turn's wait, 1 ms resolution): p50 ${f(r.loopDelay.p50)} ms, p99 ${f(r.loopDelay.p99)} ms`)
  console.log(`  request latency: p50 ${f(pctl(latencies, 0.5))} ms, p99 ${f(pctl(latencies, 0.99))} ms; warm baseline p50 ${f(pctl(warm, 0.5))} ms ` +
    `(ratio p50 ${(pctl(latencies, 0.5) / pctl(warm, 0.5)).toFixed(1)}×)`)
  console.log(`  collection proofs so far: ${r.collection.collected} collected, ${r.collection.retained} retained, ${r.collection.waiting} awaiting a verdict`)
  // External memory: what the buffers of retired generations would keep if any escaped. Each
  // resident extension holds sizeMb of ArrayBuffers (one was resident at the baseline), so what is
  // left beyond the resident ones is compared with the baseline's.
  const held = (n: number) => n * sizeMb * 1024 ** 2
  const unheldAtBaseline = baseline.arrayBuffers - held(baseline.holders)
  const unheldAtEnd = r.mem.arrayBuffers - held(r.mem.holders)
  const grown = unheldAtEnd - unheldAtBaseline
  const externalOk = grown <= held(1) / 2
  console.log(`  external memory after a forced GC: arrayBuffers ${mb(baseline.arrayBuffers)} MB at the baseline (${baseline.holders} holding ${sizeMb} MB), ${mb(r.mem.arrayBuffers)} MB at the end ` +
    `(${r.mem.holders} holding ${sizeMb} MB); beyond the resident ones ${mb(unheldAtBaseline)} → ${mb(unheldAtEnd)} MB ` +
    `(${grown >= 0 ? '+' : ''}${mb(grown)} MB; target back to baseline, within ${sizeMb / 2} MB) ${externalOk ? 'OK' : 'OVER'}`)
  const l = r.ledger
  const accounted = l.created === l.current + l.loading + l.draining + l.retired
  console.log(`  generations: created ${l.created} = current ${l.current} + loading ${l.loading} + draining ${l.draining} + retired ${l.retired} ${accounted ? 'OK' : 'MISMATCH'}`)
  if (values.churn) console.log(`  churn: ${admin.total} admin actions, ${admin.failed} failed`)
  process.exitCode = ratio <= 1.2 && failed === 0 && coldP99 <= 50 && externalOk && accounted ? 0 : 1
}
