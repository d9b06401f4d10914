// FastCGI figures, in one sitting, with hello.greet and 32 connections (issue 16):
//  1. nginx → resident fcgi-worker against nginx → php-fpm serving hello.php (target ≥ 1.0×);
//  2. the same command as FastCGI against CGI, behind one web server (lighttpd: mod_fastcgi to an
//     fcgi-worker, mod_cgi running `resident cgi` per request): the seed's "≥ 5×" claim.
// Every target is driven by autocannon from this process, in alternation, for --rounds rounds;
// the report gives each target's median req/s and p50 latency, and the ratios from this run.
//
//   npm run bench:fastcgi -- [--rounds 3] [--duration 5] [--connections 32] [--cgi-duration 10]
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { findPeer } from '../test/helpers/peers.ts'
import { freePort, startNginx, type Nginx } from '../test/helpers/nginx.ts'
import { startPhpFpm, type PhpFpm } from '../test/helpers/php-fpm.ts'

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    'cgi-duration': { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  },
})
const rounds = Number(opts.rounds)
const duration = Number(opts.duration)
const connections = Number(opts.connections)
const root = process.cwd()
const BIN = path.join(root, 'bin', 'resident.js')
const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-fastcgi-'))
const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  // A child may still be writing into the folder as it dies; a leftover temp folder is harmless.
  try { rmSync(dir, { recursive: true, force: true }) } catch { /* left for the OS */ }
})

function need(name: 'nginx' | 'php-fpm' | 'lighttpd'): string {
  const p = findPeer(name)
  if (!p.path) { console.error(`bench/fastcgi needs ${name} (apt-get install ${p.pkg})`); process.exit(2) }
  return p.path
}

/** Starts an fcgi-worker over the repository's extensions, with no filters. */
function worker(listen: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const noFilters = path.join(dir, 'no-filters')
    mkdirSync(noFilters, { recursive: true })
    const child = spawn(process.execPath, [BIN, 'fcgi-worker', '--listen', listen, '--extensions', path.join(root, 'extensions'), '--filters', noFilters], {
      cwd: dir, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'ignore', 'pipe'],
    })
    children.push(child)
    let out = ''
    child.stderr!.on('data', (d) => { out += d; if (out.includes('listening on')) resolve(child) })
    child.once('exit', (code) => reject(new Error(`fcgi-worker exited ${code}: ${out}`)))
  })
}

const fastcgiLocation = (upstream: string, keep: boolean) => `
  upstream backend { ${upstream} ${keep ? 'keepalive 32;' : ''} }
  server {
    listen 127.0.0.1:{{PORT}};
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME ${path.join(dir, 'php')}$fastcgi_script_name;
      fastcgi_pass backend;
      ${keep ? 'fastcgi_keep_conn on;' : ''}
    }
  }`

interface Target { name: string; url: string; duration: number }
interface Run { rps: number; p50: number; errors: number; non2xx: number }

async function drive(t: Target): Promise<Run> {
  const r = await autocannon({ url: t.url, connections, duration: t.duration })
  return { rps: r.requests.average, p50: r.latency.p50, errors: r.errors + r.timeouts, non2xx: r.non2xx }
}

async function main(): Promise<void> {
  const nginxPath = need('nginx')
  const fpmPath = need('php-fpm')
  const lighttpdPath = need('lighttpd')
  mkdirSync(path.join(dir, 'php'))
  // hello.php does what hello.greet does: a JSON greeting for ?name=.
  writeFileSync(path.join(dir, 'php', 'hello.php'), `<?php header('Content-Type: application/json; charset=utf-8'); echo json_encode(['hello' => $_GET['name'] ?? 'world']);`)

  // nginx → fcgi-worker (one process; and two, one per core), keep-alive as docs/operators/fastcgi.md sets it up.
  await worker(`unix:${dir}/w1.sock`)
  await worker(`unix:${dir}/w2.sock`)
  const nginxOne = await startNginx(nginxPath, mkdtempSync(path.join(dir, 'n1-')), fastcgiLocation(`server unix:${dir}/w1.sock;`, true))
  const nginxTwo = await startNginx(nginxPath, mkdtempSync(path.join(dir, 'n2-')), fastcgiLocation(`server unix:${dir}/w1.sock; server unix:${dir}/w2.sock;`, true))
  const nginxOneNoKeep = await startNginx(nginxPath, mkdtempSync(path.join(dir, 'n3-')), fastcgiLocation(`server unix:${dir}/w1.sock;`, false))
  // nginx → php-fpm: Debian's pool shape made static (no spawning during the run), 4 children; no
  // keep-alive, since kept connections pin FPM workers (see docs/operators/fastcgi.md).
  mkdirSync(path.join(dir, 'fpm'))
  const fpm: PhpFpm = await startPhpFpm(fpmPath, path.join(dir, 'fpm'), { 'pm.max_children': 4 })
  const nginxFpm = await startNginx(nginxPath, mkdtempSync(path.join(dir, 'n4-')), fastcgiLocation(`server unix:${fpm.socket};`, false))

  // lighttpd: the same command as FastCGI (mod_fastcgi → fcgi-worker) and as CGI (mod_cgi → resident cgi).
  const www = path.join(dir, 'www')
  mkdirSync(www)
  const wrapper = path.join(www, 'hello.cgi')
  writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" cgi "${path.join(root, 'extensions', 'hello.ts')}"\n`)
  chmodSync(wrapper, 0o755)
  await worker(`unix:${dir}/w3.sock`)
  const lport = await freePort()
  const lconf = path.join(dir, 'lighttpd.conf')
  writeFileSync(lconf, [
    `server.document-root = "${www}"`, `server.bind = "127.0.0.1"`, `server.port = ${lport}`,
    `server.errorlog = "${path.join(dir, 'lighttpd-error.log')}"`, `server.breakagelog = "${path.join(dir, 'breakage.log')}"`,
    `server.max-connections = 1024`,
    `server.modules = ( "mod_setenv", "mod_cgi", "mod_fastcgi" )`,
    `cgi.assign = ( ".cgi" => "" )`,
    `setenv.add-environment = ( "RESIDENT_CACHE_DIR" => "${path.join(dir, 'cache')}" )`,
    `fastcgi.server = ( "/hello/" => (( "socket" => "${dir}/w3.sock", "check-local" => "disable" )) )`, '',
  ].join('\n'))
  const lighttpd = spawn(lighttpdPath, ['-D', '-f', lconf], { stdio: 'ignore' })
  children.push(lighttpd)
  const lbase = `http://127.0.0.1:${lport}`
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${lbase}/hello.cgi/greet?name=x`)).ok) break } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }

  const cgiDuration = Number(opts['cgi-duration'])
  const targets: Target[] = [
    { name: 'nginx → php-fpm hello.php (4 children)', url: `${nginxFpm.url}/hello.php?name=x`, duration },
    { name: 'nginx → fcgi-worker ×1 (keep-alive)', url: `${nginxOne.url}/hello/greet?name=x`, duration },
    { name: 'nginx → fcgi-worker ×1 (no keep-alive)', url: `${nginxOneNoKeep.url}/hello/greet?name=x`, duration },
    { name: 'nginx → fcgi-worker ×2 (keep-alive)', url: `${nginxTwo.url}/hello/greet?name=x`, duration },
    { name: 'lighttpd → fcgi-worker (FastCGI)', url: `${lbase}/hello/greet?name=x`, duration },
    { name: 'lighttpd → resident cgi (CGI)', url: `${lbase}/hello.cgi/greet?name=x`, duration: cgiDuration },
  ]
  // Check each answers what hello.greet answers before measuring it.
  for (const t of targets) {
    const body = await (await fetch(t.url)).text()
    if (body !== '{"hello":"x"}') throw new Error(`${t.name} answered ${body}`)
  }
  // Warm-up.
  for (const t of targets) await autocannon({ url: t.url, connections, duration: 1 })

  const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const r = await drive(t)
      runs.get(t.name)!.push(r)
      console.error(`round ${round}: ${t.name}: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms${r.errors + r.non2xx ? `, ${r.errors} errors, ${r.non2xx} non-2xx` : ''}`)
    }
  }
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
  const med = new Map([...runs].map(([k, v]) => [k, { rps: median(v.map((r) => r.rps)), p50: median(v.map((r) => r.p50)), failed: v.reduce((n, r) => n + r.errors + r.non2xx, 0) }]))
  const fpmRps = med.get(targets[0]!.name)!.rps
  const fcgiLighttpd = med.get(targets[4]!.name)!.rps
  console.log(`\nFastCGI, hello.greet, ${connections} connections, ${rounds} rounds of ${duration} s (CGI ${cgiDuration} s); medians:\n`)
  console.log('| set-up | req/s | p50 ms | vs php-fpm | failed |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const t of targets) {
    const m = med.get(t.name)!
    console.log(`| ${t.name} | ${Math.round(m.rps)} | ${m.p50} | ${(m.rps / fpmRps).toFixed(2)}× | ${m.failed} |`)
  }
  console.log(`\nnginx → fcgi-worker ×1 / nginx → php-fpm: ${(med.get(targets[1]!.name)!.rps / fpmRps).toFixed(2)}× (target ≥ 1.0×)`)
  console.log(`nginx → fcgi-worker ×2 / nginx → php-fpm: ${(med.get(targets[3]!.name)!.rps / fpmRps).toFixed(2)}×`)
  console.log(`FastCGI / CGI (lighttpd, same command): ${(fcgiLighttpd / med.get(targets[5]!.name)!.rps).toFixed(1)}× (the seed's claim: ≥ 5×)`)
  await Promise.all([nginxOne, nginxTwo, nginxOneNoKeep, nginxFpm].map((n: Nginx) => n.stop()))
  await fpm.stop()
  process.exit(0)
}

await main()
