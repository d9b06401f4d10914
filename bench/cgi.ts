// The CGI ladder, in one run: what a process per request costs, measured against lighttpd running
// the same kind of program (issue 15's targets).
//
// - Resident's cgi mode (hello.greet, a process per request) vs lighttpd + a plain node CGI script
//   doing the same thing: target ≥ 1.0×.
// - Resident's CGI gateway + php-cgi vs lighttpd + php-cgi on the same PHP script: target ≥ 0.9×.
// - The rung below: Resident in process vs its cgi mode.
// - What each step of cutting the runner's start-up bought (CPU per spawn, from bash's `times`).
//
//   npm run bench:cgi -- [--rounds 3] [--duration 5] [--connections 8] [--warmup 15] [--spawns 40]
// Every target's server is started once and warmed up (--warmup seconds under the same load; 0 for
// the old way: each round starts its servers afresh after one second). A Node server takes
// thousands of requests before V8 has compiled its request path: at a hundred requests a second, a
// short warm-up measures the compiler's threads as much as the server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import * as esbuild from 'esbuild'
import pino from 'pino'

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string' },
    dir: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '15' },
    spawns: { type: 'string', default: '40' },
    // A subset of the targets, `|`-separated substrings of their names (which hold commas); the spawn ladder only if `ladder` is one of them.
    only: { type: 'string' },
  },
})

const root = process.cwd()
const dist = (file: string) => pathToFileURL(path.join(root, 'dist', file)).href
const LIGHTTPD = '/usr/sbin/lighttpd'
const PHP_CGI = '/usr/bin/php-cgi'

/** The plain node CGI script: what hello.greet does, by hand. */
const PLAIN_SCRIPT = `const q = new URLSearchParams(process.env.QUERY_STRING || '')
process.stdout.write('Content-Type: application/json; charset=utf-8\\n\\n' + JSON.stringify({ hello: q.get('name') || 'world' }))
`
const PHP_SCRIPT = `<?php header('Content-Type: application/json'); echo json_encode(['hello' => $_GET['name'] ?? 'world']);\n`

/** A folder with the programs every target serves: made once per run. */
function prepare(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-cgi-'))
  const www = path.join(dir, 'www')
  mkdirSync(www)
  mkdirSync(path.join(dir, 'filters'))
  mkdirSync(path.join(dir, 'cache'))
  writeFileSync(path.join(www, 'hello.js'), PLAIN_SCRIPT)
  writeFileSync(path.join(www, 'hello.php'), PHP_SCRIPT)
  // The same programs, each in a session of its own, as Resident starts every program (a process
  // group it can kill): with the kernel's autogroup scheduling (sched_autogroup_enabled) a session
  // is also a scheduling group, so on a busy machine each such process gets the CPU share of a
  // whole session, while lighttpd's programs share its one. `#!/usr/bin/setsid <interpreter>`.
  writeFileSync(path.join(www, 'hello-own-session.cgi'), `#!/usr/bin/setsid ${process.execPath}\n${PLAIN_SCRIPT}`)
  writeFileSync(path.join(www, 'hello-own-session.php.cgi'), `#!/usr/bin/setsid ${PHP_CGI}\n${PHP_SCRIPT}`)
  for (const f of ['hello-own-session.cgi', 'hello-own-session.php.cgi']) chmodSync(path.join(www, f), 0o755)
  // lighttpd gives CGI programs no PATH: absolute paths.
  writeFileSync(path.join(www, 'resident.cgi'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, 'bin/resident.js')}" cgi "${path.join(root, 'extensions/hello.ts')}"\n`)
  chmodSync(path.join(www, 'resident.cgi'), 0o755)
  return dir
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    }).on('error', reject)
  })
}

interface Running { url: string; child: ChildProcess }
interface Target { path: string; start(dir: string): Promise<Running>; base?: string; goal?: number; /** more baselines, for more ratios */ alsoAgainst?: string[] }

async function lighttpd(dir: string, assign: string): Promise<Running> {
  const port = await freePort()
  const conf = path.join(dir, `lighttpd-${port}.conf`)
  writeFileSync(conf, [
    `server.document-root = "${path.join(dir, 'www')}"`,
    `server.bind = "127.0.0.1"`,
    `server.port = ${port}`,
    `server.errorlog = "${path.join(dir, 'lighttpd-error.log')}"`,
    `server.modules = ( "mod_setenv", "mod_cgi" )`,
    `cgi.assign = ( ${assign} )`,
    `setenv.add-environment = ( "RESIDENT_CACHE_DIR" => "${path.join(dir, 'cache')}" )`,
    '',
  ].join('\n'))
  const child = spawn(LIGHTTPD, ['-D', '-f', conf], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 200; i++) {
    try { await fetch(`${url}/`); return { url, child } } catch { await new Promise((r) => setTimeout(r, 25)) }
  }
  throw new Error('lighttpd did not start')
}

/** A Resident server in a child process of its own (`--role`), on the built product. */
function resident(role: string, dir: string): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1]!, '--role', role, '--dir', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.once('message', (m) => resolve({ child, url: (m as { url: string }).url }))
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)))
  })
}

const targets: Record<string, Target> = {
  'lighttpd + node script': { path: '/hello.js?name=x', start: (dir) => lighttpd(dir, `".js" => "${process.execPath}"`) },
  'lighttpd + node, own session': { path: '/hello-own-session.cgi?name=x', start: (dir) => lighttpd(dir, '".cgi" => ""') },
  'resident cgi mode': { path: '/hello/greet?name=x', base: 'lighttpd + node script', goal: 1.0, alsoAgainst: ['lighttpd + node, own session', 'cgi mode, server forks'], start: (dir) => resident('cgi-mode', dir) },
  // The spawn path before the spawn helper (cgi.spawn "direct"): the server forks every program.
  'cgi mode, server forks': { path: '/hello/greet?name=x', base: 'lighttpd + node, own session', start: (dir) => resident('cgi-mode-direct', dir) },
  'lighttpd + resident cgi': { path: '/resident.cgi/greet?name=x', base: 'lighttpd + node script', start: (dir) => lighttpd(dir, '".cgi" => ""') },
  'lighttpd + php-cgi': { path: '/hello.php?name=x', start: (dir) => lighttpd(dir, `".php" => "${PHP_CGI}"`) },
  'lighttpd + php, own session': { path: '/hello-own-session.php.cgi?name=x', start: (dir) => lighttpd(dir, '".cgi" => ""') },
  'resident gateway + php-cgi': { path: '/www/hello.php?name=x', base: 'lighttpd + php-cgi', goal: 0.9, alsoAgainst: ['lighttpd + php, own session', 'gateway, server forks'], start: (dir) => resident('gateway', dir) },
  'gateway, server forks': { path: '/www/hello.php?name=x', base: 'lighttpd + php, own session', start: (dir) => resident('gateway-direct', dir) },
  'resident in process': { path: '/hello/greet?name=x', base: 'resident cgi mode', start: (dir) => resident('inprocess', dir) },
}

async function serve(role: string, dir: string): Promise<void> {
  process.once('SIGTERM', () => process.exit(0))
  const [{ resolveConfig }, { buildServer }, { CgiExecutor }] = await Promise.all([
    import(dist('config/load.js')), import(dist('server/app.js')), import(dist('modes/cgi/executor.js')),
  ])
  const input: Record<string, unknown> = { extensionsDir: path.join(root, 'extensions'), filtersDir: path.join(dir, 'filters'), logLevel: 'silent' }
  const spawnWay = role.endsWith('-direct') ? 'direct' : 'helper'
  role = role.replace(/-direct$/, '')
  if (role === 'gateway') input.cgi = { bin: { '/www/': path.join(dir, 'www') }, interpreters: { '.php': PHP_CGI }, spawn: spawnWay }
  if (role === 'cgi-mode') input.mode = 'cgi'
  const config = resolveConfig(input, { cwd: root })
  // The cgi mode's executor as the server would make it, with the run's own bundle cache.
  const executors = role === 'cgi-mode' ? { cgi: new CgiExecutor({ cacheDir: path.join(dir, 'cache'), bodyLimit: config.bodyLimit, spawn: spawnWay }) } : undefined
  const server = await buildServer(config, { logger: pino({ level: 'silent' }), executors })
  if (role === 'cgi-mode' && (await server.app.inject('/hello/greet')).statusCode !== 200) throw new Error('the cgi mode does not serve hello.greet')
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' })
  process.send!({ url })
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    child.once('exit', () => resolve())
    child.kill()
  })
}

interface Sample { rps: number; p50: number; p99: number; errors: number }

async function load(url: string, duration: number, connections: number): Promise<Sample> {
  const r = await autocannon({ url, duration, connections, pipelining: 1 })
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * CPU per spawn of each way to run one request of hello.greet, from bash's `times` (user + system
 * of its children): steadier than wall time on a shared machine.
 */
async function spawnLadder(dir: string, n: number): Promise<void> {
  const entry = path.join(root, 'extensions/hello.ts')
  const { ensureRunnerBundle, ensureRunnerLoader } = await import(dist('modes/cgi/runner-bundle.js')) as { ensureRunnerBundle(d: string): Promise<string>; ensureRunnerLoader(b: string): string }
  const { encodeFrame } = await import(dist('modes/cgi/frame.js')) as { encodeFrame(meta: object, raw: Uint8Array): Buffer }
  const { framedInvocation } = await import(dist('modes/cgi/invocation-runner.js')) as { framedInvocation(inv: object): object }
  const cache = path.join(dir, 'cache')
  const runner = await ensureRunnerBundle(cache)
  // What the cgi mode starts per request, and the frame it hands the runner on stdin for hello.greet.
  const loader = ensureRunnerLoader(runner)
  const frame = path.join(dir, 'frame.bin')
  writeFileSync(frame, encodeFrame(framedInvocation({
    id: 'bench-1', extension: 'hello', command: 'greet', method: 'GET', url: '/hello/greet?name=x', path: '/hello/greet',
    query: { name: 'x' }, headers: { host: '127.0.0.1' }, params: { name: 'x' }, body: undefined, rawBody: new Uint8Array(0),
    contentType: null, clientAddress: '127.0.0.1', user: undefined, deadline: 0,
  }), new Uint8Array(0)))
  // What the runner loaded before it loaded them lazily: node:stream, node:worker_threads,
  // node:inspector, and process.stdin to read the frame.
  const eager = path.join(dir, 'eager.cjs')
  writeFileSync(eager, "require('node:stream'); require('node:worker_threads'); require('node:inspector'); process.stdin\n")
  // The snapshot: the runner's modules loaded and compiled at build time, main() run on start.
  const snapEntry = path.join(dir, 'snapshot-entry.mjs')
  writeFileSync(snapEntry, `import { main } from ${JSON.stringify(path.join(root, 'dist/cli/cgi.js'))}\nimport v8 from 'node:v8'\nv8.startupSnapshot.setDeserializeMainFunction(() => { void main(process.argv.slice(1)) })\n`)
  const snapBundle = path.join(dir, 'snapshot.cjs')
  await esbuild.build({ entryPoints: [snapEntry], outfile: snapBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'silent', external: ['esbuild'] })
  const blob = path.join(dir, 'runner.blob')
  const snapshot = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', snapBundle], { encoding: 'utf8' })
  // Node's snapshot builder cannot load every built-in (node:http, for one, on Node 20): say so.
  if (snapshot.status !== 0) console.log(`\nthe V8 snapshot could not be built: ${/^\w*Error: .*$/m.exec(snapshot.stderr)?.[0] ?? `exit ${snapshot.status}`}`)
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const node = q(process.execPath)
  const framed = `RESIDENT_CACHE_DIR=${q(cache)} RESIDENT_FRAME=1 RESIDENT_EXTENSION_NAME=hello`
  const steps: Array<[string, string]> = [
    ['node, an empty script', `${node} -e 0`],
    ['plain node CGI script', `${node} ${q(path.join(dir, 'www/hello.js'))}`],
    ['resident cgi, esbuild per request', `RESIDENT_CACHE_DIR=/dev/null/none ${node} ${q(path.join(root, 'bin/resident.js'))} cgi ${q(entry)}`],
    ['resident cgi, cached bundle', `RESIDENT_CACHE_DIR=${q(cache)} ${node} ${q(path.join(root, 'bin/resident.js'))} cgi ${q(entry)}`],
    // The cgi mode's runner, handed hello.greet's invocation frame on stdin as the host does.
    // What it cost while a module it loads imported node:http (for header checks):
    ['bundled runner + node:http, eager', `${framed} ${node} -r node:http -r ${q(eager)} ${q(runner)} ${q(entry)} < ${q(frame)}`],
    ['bundled runner, eager built-ins', `${framed} ${node} -r ${q(eager)} ${q(runner)} ${q(entry)} < ${q(frame)}`],
    ['bundled runner', `${framed} ${node} ${q(runner)} ${q(entry)} < ${q(frame)}`],
    ...(snapshot.status === 0 ? [['bundled runner + V8 snapshot', `${framed} ${node} --snapshot-blob ${q(blob)} ${q(entry)} < ${q(frame)}`] as [string, string]] : []),
    ['bundled runner + V8 code cache', `${framed} ${node} ${q(loader)} ${q(entry)} < ${q(frame)}`],
    ['+ --preserve-symlinks-main (cgi mode)', `${framed} ${node} --preserve-symlinks-main ${q(loader)} ${q(entry)} < ${q(frame)}`],
  ]
  // What a web server gives a CGI program (the cgi mode's runner gets the same allow-list): not this
  // shell's environment, where NODE_EXTRA_CA_CERTS, say, makes every Node process parse a CA bundle
  // at start-up (40 ms here) and NODE_OPTIONS could add anything.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: process.env.LANG ?? 'C.UTF-8', GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', PATH_INFO: '/greet', QUERY_STRING: 'name=x' }
  // Passes in alternating order, so a change in the machine's load falls on every step alike.
  const passes = 3
  console.log(`\nCPU per spawn (${n} runs each in ${passes} passes, user + system of the children; median of the passes):`)
  const ok = new Map(steps.map(([label, cmd]) => [label, label.startsWith('node,') || /"hello":"x"/.test(spawnSync('bash', ['-c', cmd], { env, encoding: 'utf8' }).stdout)]))
  const perPass = new Map<string, number[]>(steps.map(([label]) => [label, []]))
  for (let pass = 0; pass < passes; pass++) {
    for (const [label, cmd] of pass % 2 ? [...steps].reverse() : steps) {
      const runs = Math.max(2, Math.round((label.includes('esbuild per request') ? n / 4 : n) / passes))
      const r = spawnSync('bash', ['-c', `for i in $(seq ${runs}); do ${cmd} >/dev/null 2>&1; done; times`], { env, encoding: 'utf8' })
      const lines = r.stdout.trim().split('\n')
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines[lines.length - 1]!)
      perPass.get(label)!.push(m ? ((Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000) / runs : NaN)
    }
  }
  const plain = median(perPass.get('plain node CGI script')!)
  // What each step of the runner bought: its CPU against the step it changes.
  const stepOf: Record<string, string> = {
    'bundled runner, eager built-ins': 'bundled runner + node:http, eager',
    'bundled runner': 'bundled runner, eager built-ins',
    'bundled runner + V8 snapshot': 'bundled runner',
    'bundled runner + V8 code cache': 'bundled runner',
    '+ --preserve-symlinks-main (cgi mode)': 'bundled runner + V8 code cache',
  }
  for (const [label] of steps) {
    const cpu = median(perPass.get(label)!)
    const vsPlain = label.startsWith('node,') ? '' : `  ${(plain / cpu).toFixed(2)}× the plain script`
    const before = stepOf[label] !== undefined ? perPass.get(stepOf[label]!) : undefined
    const bought = before !== undefined ? `, ${(median(before) - cpu).toFixed(1)} ms less than "${stepOf[label]}"` : ''
    console.log(`${label.padEnd(40)} ${cpu.toFixed(1).padStart(7)} ms${vsPlain}${bought}${ok.get(label) ? '' : '  (WRONG OUTPUT)'}`)
  }
}

async function main(): Promise<void> {
  if (opts.role) return serve(opts.role, opts.dir!)
  const rounds = Number(opts.rounds)
  const duration = Number(opts.duration)
  const connections = Number(opts.connections)
  const dir = prepare()
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  try {
    const only = opts.only?.split('|').map((x) => x.trim())
    const names = Object.keys(targets).filter((n) => only === undefined || only.some((o) => n.includes(o)))
    const samples = new Map<string, Sample[]>(names.map((n) => [n, []]))
    const warmup = Number(opts.warmup)
    // Warm: every server started once and warmed up, idle while the others are measured.
    const running = new Map<string, Running>()
    try {
      if (warmup > 0) {
        for (const name of names) {
          const t = targets[name]!
          const r = await t.start(dir)
          running.set(name, r)
          await load(r.url + t.path, warmup, connections)
        }
        console.log(`servers warmed up: ${warmup} s each at ${connections} connections`)
      }
      for (let round = 1; round <= rounds; round++) {
        for (const name of round % 2 ? names : [...names].reverse()) {
          const t = targets[name]!
          const warm = running.get(name)
          const { child, url } = warm ?? await t.start(dir)
          try {
            // Cold: a second of warm-up (and the first build of any bundle).
            if (warm === undefined) await load(url + t.path, 1, connections)
            const s = await load(url + t.path, duration, connections)
            samples.get(name)!.push(s)
            console.log(`round ${round} ${name.padEnd(28)} ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  errors ${s.errors}`)
          } finally {
            if (warm === undefined) await stop(child)
          }
        }
      }
    } finally {
      for (const r of running.values()) await stop(r.child)
    }
    console.log(`\n${rounds} rounds × ${duration} s, ${connections} connections, ${warmup > 0 ? `servers warmed up ${warmup} s` : 'each round on servers started afresh (1 s warm-up)'}, medians:`)
    console.log(`${'target'.padEnd(28)} ${'req/s'.padStart(7)} ${'p50'.padStart(5)} ${'p99'.padStart(5)}  ratio (median)  paired  against`)
    const verdicts: string[] = []
    for (const name of names) {
      const s = samples.get(name)!
      const t = targets[name]!
      const rps = median(s.map((x) => x.rps))
      const ratios: string[] = []
      for (const base of [t.base, ...t.alsoAgainst ?? []]) {
        const b = base === undefined ? undefined : samples.get(base)
        if (base === undefined || b === undefined) continue
        const byMedian = rps / median(b.map((x) => x.rps))
        const paired = median(s.map((x, i) => x.rps / b[i]!.rps))
        ratios.push(`${byMedian.toFixed(2).padStart(13)}×  ${paired.toFixed(2).padStart(5)}×  ${base}`)
        if (t.goal !== undefined && (base === t.base || base === t.alsoAgainst?.[0])) verdicts.push(`${name}: target ≥ ${t.goal.toFixed(2)}× ${base} — ${byMedian >= t.goal ? 'met' : 'NOT met'} by the ratio of medians (${byMedian.toFixed(2)}×), ${paired >= t.goal ? 'met' : 'NOT met'} paired (${paired.toFixed(2)}×)`)
      }
      console.log(`${name.padEnd(28)} ${rps.toFixed(0).padStart(7)} ${String(median(s.map((x) => x.p50))).padStart(5)} ${String(median(s.map((x) => x.p99))).padStart(5)}  ${ratios[0] ?? ''}`)
      for (const more of ratios.slice(1)) console.log(`${''.padEnd(48)}${more}`)
    }
    if (verdicts.length > 0) console.log(`\n${verdicts.join('\n')}`)
    if (only === undefined || only.includes('ladder')) await spawnLadder(dir, Number(opts.spawns))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
