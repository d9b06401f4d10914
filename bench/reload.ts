// Hot reload against restart-on-save, in one run (issue 5).
//  1. `resident dev` in a child process, autocannon driving traffic at one extension while it is
//     saved N times: save → first response from the new code (p50/p99), failed requests.
//  2. The `node --watch` way with `resident serve`: on each save, SIGTERM the server, start a new
//     one, and time save → first response from the new code; requests failed meanwhile.
//  3. In a fresh process: heap before/after 1000 reloads (forced GC), old generations collected.
//
//   npm run bench:reload -- [--saves 100] [--restarts 20] [--reloads 1000] [--connections 16] [--quiet 25]
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pino from 'pino'
import { resolveConfig } from '../src/config/load.ts'
import { buildServer } from '../src/server/app.ts'

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string' },
    dir: { type: 'string' },
    saves: { type: 'string', default: '100' },
    restarts: { type: 'string', default: '20' },
    reloads: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '16' },
    quiet: { type: 'string', default: '25' },
  },
})

const BIN = path.resolve(process.cwd(), 'bin/resident.js')
const ext = (v: number) => `import { Extension } from 'resident-host'
const ballast = new Array(32 * 1024).fill(${v})
export default class Bench extends Extension {
  v() { return { v: ${v}, n: ballast.length } }
}
`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]! }
const fmt = (n: number) => n.toFixed(1)

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function folder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-'))
  mkdirSync(path.join(dir, 'extensions'))
  writeFileSync(path.join(dir, 'extensions', 'bench.ts'), ext(0))
  return dir
}

async function version(url: string): Promise<number | null> {
  try {
    const r = await fetch(url)
    if (r.status !== 200) { await r.arrayBuffer(); return null }
    return ((await r.json()) as { v: number }).v
  } catch { return null }
}

/** Polls until the server answers with version `v`; returns the ms it took from `t0`. */
async function firstAnswer(url: string, v: number, t0: number, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    if ((await version(url)) === v) return performance.now() - t0
    if (performance.now() - t0 > timeoutMs) throw new Error(`no answer with version ${v} after ${timeoutMs} ms`)
    await sleep(1)
  }
}

/** `resident <args>` run in `dir` (no config file, no filters: the extension alone). */
function resident(args: string[], dir: string): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: 'ignore', env: { ...process.env, NODE_ENV: '' } })
}

/** Traffic for the whole phase; returns totals when stopped. */
function traffic(url: string, connections: number) {
  let done!: Promise<autocannon.Result>
  const instance = autocannon({ url, connections, duration: 3600, pipelining: 1 }, () => undefined) as unknown as autocannon.Instance
  done = new Promise<autocannon.Result>((resolve) => instance.on('done', resolve))
  return async () => {
    instance.stop()
    const r = await done
    // errors counts refused connection attempts too (a restarting server), so it can exceed requests.
    return { requests: r.requests.total, failed: r.errors + r.timeouts + r.non2xx }
  }
}

async function hotReload(saves: number, connections: number, quiet: number) {
  const dir = folder()
  const port = await freePort()
  const child = resident(['dev', '-p', String(port), '-e', 'extensions', '-q', String(quiet)], dir)
  const url = `http://127.0.0.1:${port}/bench/v`
  try {
    await firstAnswer(url, 0, performance.now())
    await sleep(300) // the watcher is up once the first generation is installed; give chokidar its moment
    const stop = traffic(url, connections)
    await sleep(500)
    const latencies: number[] = []
    for (let i = 1; i <= saves; i++) {
      writeFileSync(path.join(dir, 'extensions', 'bench.ts'), ext(i))
      latencies.push(await firstAnswer(url, i, performance.now()))
      await sleep(50)
    }
    return { latencies, ...(await stop()) }
  } finally {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

async function restartOnSave(restarts: number, connections: number) {
  const dir = folder()
  const port = await freePort()
  const args = ['serve', '-p', String(port), '-e', 'extensions']
  const url = `http://127.0.0.1:${port}/bench/v`
  let child = resident(args, dir)
  try {
    await firstAnswer(url, 0, performance.now())
    const stop = traffic(url, connections)
    await sleep(500)
    const latencies: number[] = []
    for (let i = 1; i <= restarts; i++) {
      writeFileSync(path.join(dir, 'extensions', 'bench.ts'), ext(i))
      const t0 = performance.now()
      // What `node --watch` does on a change: SIGTERM, wait for the exit, start again.
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
      child = resident(args, dir)
      latencies.push(await firstAnswer(url, i, t0))
      await sleep(200)
    }
    return { latencies, ...(await stop()) }
  } finally {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Child role: 1000 reloads in a fresh process, heap measured after forced GC. */
async function heapRole(reloads: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!
  const dir = folder()
  const config = resolveConfig({ extensionsDir: path.join(dir, 'extensions'), filtersDir: path.join(dir, 'filters'), logLevel: 'silent' })
  const server = await buildServer(config, { logger: pino({ level: 'silent' }) })
  const collected = new Set<number>()
  const finals = new FinalizationRegistry<number>((id) => collected.add(id))
  const registry = server.registry
  const reload = async (i: number) => {
    writeFileSync(path.join(dir, 'extensions', 'bench.ts'), ext(i))
    const gen = await registry.reload('bench')
    finals.register(gen.module.sentinel!, gen.id)
  }
  const settle = async () => { for (let k = 0; k < 5; k++) { gc(); await sleep(20) } }
  for (let i = 1; i <= 50; i++) await reload(i)
  await settle()
  const before = process.memoryUsage().heapUsed
  const firstMeasured = registry.slots.get('bench')!.current!.id + 1
  const times: number[] = []
  for (let i = 1; i <= reloads; i++) { const t0 = performance.now(); await reload(50 + i); times.push(performance.now() - t0) }
  await settle()
  const after = process.memoryUsage().heapUsed
  const last = registry.slots.get('bench')!.current!.id
  let ok = 0
  for (let id = firstMeasured; id < last; id++) if (collected.has(id)) ok++
  await server.close()
  rmSync(dir, { recursive: true, force: true })
  process.send!({ before, after, collected: ok, retired: last - firstMeasured, reloadP50: pct(times, 0.5), reloadP99: pct(times, 0.99) })
}

function heapChild(reloads: number): Promise<{ before: number; after: number; collected: number; retired: number; reloadP50: number; reloadP99: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', process.argv[1]!, '--role', 'heap', '--reloads', String(reloads)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.once('message', (m) => { resolve(m as never); child.disconnect() })
    child.once('exit', (code) => { if (code) reject(new Error(`heap child exited with ${code}`)) })
  })
}

async function main(): Promise<void> {
  if (opts.role === 'heap') return heapRole(Number(opts.reloads))
  const saves = Number(opts.saves)
  const restarts = Number(opts.restarts)
  const connections = Number(opts.connections)
  const quiet = Number(opts.quiet)
  console.log(`node ${process.version}, ${saves} saves (quiet ${quiet} ms), ${restarts} restarts, ${opts.reloads} reloads, ${connections} connections`)

  const hot = await hotReload(saves, connections, quiet)
  console.log(`hot reload   (resident dev):  save → first new response p50 ${fmt(pct(hot.latencies, 0.5))} ms, p99 ${fmt(pct(hot.latencies, 0.99))} ms; ${hot.failed} failed of ${hot.requests} requests`)
  const cold = await restartOnSave(restarts, connections)
  console.log(`restart on save (serve, node --watch way): save → first new response p50 ${fmt(pct(cold.latencies, 0.5))} ms, p99 ${fmt(pct(cold.latencies, 0.99))} ms; ${cold.requests} requests answered, ${cold.failed} failed requests/connection attempts (${fmt(cold.failed / restarts)} per restart)`)
  const heap = await heapChild(Number(opts.reloads))
  const mib = (n: number) => (n / 1048576).toFixed(2)
  console.log(`${opts.reloads} reloads: heap ${mib(heap.before)} → ${mib(heap.after)} MiB (growth ${mib(heap.after - heap.before)} MiB), ${heap.collected}/${heap.retired} old generations collected, registry.reload p50 ${fmt(heap.reloadP50)} ms p99 ${fmt(heap.reloadP99)} ms`)

  console.log('\nsummary (medians; ratio = restart-on-save / hot reload):')
  console.log(`  save → new code answering: ${fmt(pct(hot.latencies, 0.5))} ms vs ${fmt(pct(cold.latencies, 0.5))} ms  → ${(pct(cold.latencies, 0.5) / pct(hot.latencies, 0.5)).toFixed(1)}× faster in place`)
  console.log(`  failed requests per save:  ${fmt(hot.failed / saves)} vs ${fmt(cold.failed / restarts)}`)
}

await main()
