// 1000 load/unload cycles of an extension holding 1 MB: heap growth after GC, and every generation
// proved collected. `node bench/run.js unload [--cycles 1000] [--size-mb 1]`
// Baseline: the heap after GC once the first --warmup cycles ran (same run, same process).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { resolveConfig } from '../src/config/load.ts'
import { buildServer } from '../src/server/app.ts'

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '1000' },
    'size-mb': { type: 'string', default: '1' },
    warmup: { type: 'string', default: '20' },
  },
})
const cycles = Number(values.cycles)
const sizeMb = Number(values['size-mb'])
const warmup = Math.min(Number(values.warmup), cycles)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run through bench/run.js (needs --expose-gc)')

const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-unload-'))
// Heap memory (not a Buffer) so that a leak shows in heapUsed; a host timer and an onDispose, as real
// extensions have.
writeFileSync(path.join(dir, 'holder.ts'), `import { Extension } from 'resident-host'
export default class Holder extends Extension {
  data: string[] = []
  override init() {
    const n = Math.floor(${sizeMb} * 1024 * 1024 / 1024)
    for (let i = 0; i < n; i++) this.data.push(String(i).padEnd(1024 - 16, '.') + Math.random())
    this.host.setInterval(() => this.data.length, 1000)
    this.host.onDispose(() => { this.data = [] })
  }
  ping() { return this.data.length }
}`)

const config = resolveConfig({ extensionsDir: dir, filtersDir: path.join(dir, 'no-filters'), idleTimeout: 0, unload: { collectionGrace: '2s' } }, { cwd: dir })
const server = await buildServer(config, { logger: pino({ level: 'error' }) })
const { registry } = server

const heapAfterGc = async () => {
  for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)) }
  return process.memoryUsage().heapUsed
}
const mb = (n: number) => (n / 1024 ** 2).toFixed(1)

let baseline = 0
const loadMs: number[] = []
const started = performance.now()
for (let i = 1; i <= cycles; i++) {
  const t0 = performance.now()
  const r = await server.app.inject('/holder/ping')
  loadMs.push(performance.now() - t0)
  if (r.statusCode !== 200) throw new Error(`cycle ${i}: ${r.statusCode} ${r.body}`)
  await registry.unload('holder', 'admin')
  if (i === warmup) baseline = await heapAfterGc()
  if (i % 100 === 0) process.stdout.write(`  ${i} cycles, heap ${mb(process.memoryUsage().heapUsed)} MB\n`)
}
const elapsed = (performance.now() - started) / 1000

// Wait for every verdict: finalizers run after a GC; the watcher judges after its grace period.
const deadline = Date.now() + 30_000
while (registry.collection.waiting > 0 && Date.now() < deadline) {
  gc()
  await new Promise((r) => setTimeout(r, 50))
}
const final = await heapAfterGc()
const { watched, collected, retained } = registry.collection.totals
await server.close()
rmSync(dir, { recursive: true, force: true })

loadMs.sort((a, b) => a - b)
const pct = (q: number) => loadMs[Math.min(loadMs.length - 1, Math.floor(q * loadMs.length))]!.toFixed(1)
const growth = final - baseline
console.log(`\nunload bench: ${cycles} load/unload cycles of a ${sizeMb} MB extension in ${elapsed.toFixed(1)} s`)
console.log(`  heap after GC: baseline (after ${warmup} cycles) ${mb(baseline)} MB → final ${mb(final)} MB`)
console.log(`  heap growth: ${mb(growth)} MB (target ≤ 5 MB) → ${growth <= 5 * 1024 ** 2 ? 'OK' : 'OVER'}; ratio final/baseline ${(final / baseline).toFixed(2)}`)
console.log(`  generations proved collected: ${collected} / ${watched} (retained: ${retained}, undecided: ${watched - collected - retained}) → ${collected === cycles ? 'OK' : 'NOT ALL'}`)
console.log(`  load + first request: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`)
process.exitCode = growth <= 5 * 1024 ** 2 && collected === cycles ? 0 : 1
