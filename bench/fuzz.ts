// The long run of the bounded-cost fuzz (test/fuzz-bounded.test.ts runs 160 connections of it in
// `npm test`): generated requests over raw sockets — pipelined, cut off, abandoned — against
// `resident serve` on the examples, in a child process whose RSS is what counts.
// `npm run bench:fuzz -- [--connections 3000] [--parallel 8] [--seed 19]` (FUZZ_LOG=<file> keeps the server's log)
// Prints: requests and answers by status, problems (5xx for client faults, error bodies that are
// not Resident's JSON, unanswered requests), the server's peak RSS against its memory budget, the
// latency of a probe request (GET /hello/greet every 100 ms) during the fuzz against the same probe
// before it (the baseline, measured in the same run), and requests in flight once every client left.
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fuzzConnections, runFuzz } from '../test/helpers/fuzz.ts'

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '3000' },
    parallel: { type: 'string', default: '8' },
    seed: { type: 'string', default: '19' },
  },
})
const root = process.cwd() // bench/run.js runs every benchmark from the repository's root
const MB = 1024 * 1024

const pctl = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN
}
const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

const child = spawn(process.execPath, [path.join(root, 'bin/resident.js'), 'serve', '--port', '0'], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] })
const url = await new Promise<string>((resolve, reject) => {
  let out = ''
  const onData = (d: Buffer) => {
    out += d
    const m = /Resident listening on (http:\/\/[^\s"\\]+)/.exec(out)
    if (m) resolve(m[1]!)
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  child.on('exit', (code) => reject(new Error(`resident exited with ${code}:\n${out}`)))
})
console.error(`resident serve at ${url}; warming up and measuring the baseline probe…`)
// The access log would fill the pipe: keep reading it, into FUZZ_LOG=<file> if given.
if (process.env.FUZZ_LOG) {
  const log = createWriteStream(process.env.FUZZ_LOG)
  child.stdout.pipe(log)
  child.stderr.pipe(log)
} else {
  child.stdout.resume()
  child.stderr.resume()
}

async function probe(ms: number): Promise<number[]> {
  const times: number[] = []
  const until = Date.now() + ms
  while (Date.now() < until) {
    const t0 = performance.now()
    await (await fetch(`${url}/hello/greet`)).text()
    times.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, 100))
  }
  return times
}

for (const name of ['hello', 'calc', 'counter', 'cache', 'markdown', 'stream', 'secret']) await fetch(`${url}/_resident/extensions/${name}/load`, { method: 'POST', headers: { 'x-resident-admin': '1' } })
const baseline = await probe(3000)
const connections = fuzzConnections(Number(values.seed), Number(values.connections))
let peak = rss(child.pid!)
const sampler = setInterval(() => { peak = Math.max(peak, rss(child.pid!)) }, 100)
const during: number[] = []
let fuzzing = true
const prober = (async () => {
  while (fuzzing) {
    const t0 = performance.now()
    await (await fetch(`${url}/hello/greet`)).text()
    during.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, 100))
  }
})()
console.error(`fuzzing with ${connections.length} connections…`)
const started = performance.now()
const report = await runFuzz(url, connections, Number(values.parallel))
const seconds = (performance.now() - started) / 1000
fuzzing = false
await prober
console.error('waiting for every request to end…')
let inFlight = -1
const leftAt = performance.now()
for (let i = 0; i < 400; i++) {
  const status = await (await fetch(`${url}/_resident/status`)).json() as { extensions: Array<{ requests: { inFlight: number } }> }
  inFlight = status.extensions.reduce((n, e) => n + e.requests.inFlight, 0)
  if (inFlight === 0) break
  await new Promise((r) => setTimeout(r, 100))
}
const drained = (performance.now() - leftAt) / 1000
clearInterval(sampler)
const after = rss(child.pid!)
child.kill('SIGTERM')

const budget = 512 * MB // resident.config.json's memory.budget
const classes: Record<string, number> = {}
for (const [s, n] of Object.entries(report.statuses)) classes[`${s[0]}xx`] = (classes[`${s[0]}xx`] ?? 0) + n
console.log(`fuzz: seed ${values.seed}, ${connections.length} connections (${values.parallel} at a time), ${report.requests} requests, ${report.responses} answers in ${seconds.toFixed(1)} s`)
console.log(`answers by status: ${JSON.stringify(report.statuses)}  (${JSON.stringify(classes)})`)
console.log(`problems: ${report.problems.length}`)
for (const p of report.problems.slice(0, 20)) console.log(`  - ${p}`)
console.log(`server RSS: peak ${Math.round(peak / MB)} MB, after ${Math.round(after / MB)} MB; budget ${budget / MB} MB (peak/budget ${(peak / budget).toFixed(2)})`)
const b50 = pctl(baseline, 0.5)
const d50 = pctl(during, 0.5)
const d99 = pctl(during, 0.99)
console.log(`probe GET /hello/greet: baseline p50 ${b50.toFixed(1)} ms; during the fuzz p50 ${d50.toFixed(1)} ms (${(d50 / b50).toFixed(1)}×), p99 ${d99.toFixed(1)} ms, max ${Math.max(...during).toFixed(1)} ms (${during.length} probes)`)
console.log(`requests in flight after every client left: ${inFlight} (checked ${drained.toFixed(1)} s after the last one left)`)
process.exit(report.problems.length === 0 && inFlight === 0 ? 0 : 1)
