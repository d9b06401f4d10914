// What Resident's own per-request steps cost, one by one, in a tight loop in one process: the
// instructions the dispatcher adds to a request, apart from anything HTTP or the kernel does.
// Baseline: JSON.stringify of the same result, which bare fastify does for every request too.
//
//   npm run bench:dispatch -- [--iterations 2000000] [--rounds 5]
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import pino from 'pino'

const { values: opts } = parseArgs({
  options: {
    iterations: { type: 'string', default: '2000000' },
    rounds: { type: 'string', default: '5' },
  },
})

const root = process.cwd()
// The built product, as bench/overhead runs it (a URL computed at run time keeps esbuild from bundling it).
const dist = (file: string) => import(pathToFileURL(path.join(root, 'dist', file)).href)
const [{ resolveConfig }, { Registry }, { InProcessExecutor }, { parseTarget, findCommand }, { coerceParams }, { Executors }, { RequestStats }] = await Promise.all([
  dist('config/load.js'), dist('residency/registry.js'), dist('modes/inprocess.js'), dist('dispatch/route.js'), dist('modes/params.js'), dist('modes/executors.js'),
  dist('residency/request-stats.js'),
])

const config = resolveConfig({ extensionsDir: path.join(root, 'extensions'), logLevel: 'silent' }, { cwd: root })
const log = pino({ level: 'silent' })
const registry = new Registry({ config, executors: new Executors({ config, log }, { inprocess: new InProcessExecutor() }), log })
const gen = await registry.acquire('hello')
if (!gen) throw new Error('extensions/hello did not load')
registry.release(gen)
const info = findCommand(gen.module.table, 'greet')
const url = '/hello/greet?name=x'
const query = { name: 'x' }
const headers = { host: '127.0.0.1:3000', 'user-agent': 'bench' }
const EMPTY = new Uint8Array(0)

let sink: unknown
const stats = new RequestStats()
const latencies = [0.05, 0.2, 1.5, 3, 0.08, 12, 0.5, 40]
let k = 0
const steps: Record<string, () => void> = {
  'JSON.stringify (baseline)': () => { sink = JSON.stringify({ hello: query.name }) },
  'parseTarget': () => { sink = parseTarget(url) },
  'tryAcquire + release': () => { const g = registry.tryAcquire('hello')!; registry.release(g, performance.now()) },
  // Part of release above: the metrics' per-request recording (status class + latency bucket), alone.
  'metrics record (in release)': () => { stats.record(latencies[(k++) & 7]!, 200) },
  'findCommand': () => { sink = findCommand(gen.module.table, 'greet') },
  'coerceParams': () => { sink = coerceParams(info.params, query) },
  // The invocation a request hands the executor, and the in-process call turning the result into an outcome.
  'invocation + invoke': () => {
    sink = gen.module.invoke({
      id: 'r-1', extension: 'hello', command: info.name, method: 'GET', url, path: '/hello/greet', query, headers,
      params: query, body: undefined, rawBody: EMPTY, contentType: null, clientAddress: '127.0.0.1', user: undefined, deadline: 0,
    })
  },
}

const iterations = Number(opts.iterations)
const rounds = Number(opts.rounds)
const ns = new Map<string, number[]>(Object.keys(steps).map((k) => [k, []]))
for (const fn of Object.values(steps)) for (let i = 0; i < 200_000; i++) fn() // warm-up: optimised code only
for (let r = 0; r < rounds; r++) {
  for (const [name, fn] of Object.entries(steps)) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn()
    ns.get(name)!.push(Number(process.hrtime.bigint() - t0) / iterations)
  }
}
void sink

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const base = median(ns.get('JSON.stringify (baseline)')!)
console.log(`${rounds} rounds × ${iterations} iterations, medians:`)
console.log(`${'step'.padEnd(28)} ${'ns'.padStart(7)}  vs baseline`)
let total = 0
for (const [name, xs] of ns) {
  const m = median(xs)
  if (!name.includes('baseline') && !name.includes('(in release)')) total += m
  console.log(`${name.padEnd(28)} ${m.toFixed(1).padStart(7)}  ${(m / base).toFixed(2).padStart(9)}×`)
}
console.log(`${'Resident steps, summed'.padEnd(28)} ${total.toFixed(1).padStart(7)}  ${(total / base).toFixed(2).padStart(9)}×`)
await registry.close()
