import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorker, type Worker } from './helpers/fcgi.ts'
import { freePort, startNginx, type Nginx } from './helpers/nginx.ts'
import { requirePeers } from './helpers/peers.ts'

const ROOT = path.resolve(import.meta.dirname, '..')
const peers = requirePeers('nginx')

// The nginx configuration docs/operators/fastcgi.md gives for scale-out, over three workers.
export function upstreamConfig(addresses: string[]): string {
  return `
  upstream resident_workers {
${addresses.map((a) => `    server ${a} max_fails=1 fail_timeout=10s;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:{{PORT}};
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass resident_workers;
      fastcgi_keep_conn on;
      fastcgi_next_upstream error timeout invalid_header http_503;
      fastcgi_next_upstream_tries 3;
      fastcgi_connect_timeout 1s;
    }
  }`
}

describe.skipIf(!peers)('scale-out: real nginx over three fcgi-workers', () => {
  let dir: string
  let workers: Worker[] = []
  let nginx: Nginx
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-scaleout-'))
    const ports = [await freePort(), await freePort(), await freePort()]
    workers = await Promise.all(ports.map((p) => startWorker(['--listen', `127.0.0.1:${p}`], { cwd: ROOT })))
    nginx = await startNginx(peers!.nginx, dir, upstreamConfig(ports.map((p) => `127.0.0.1:${p}`)))
  })
  afterAll(async () => {
    await nginx?.stop()
    for (const w of workers) w.child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('loses no request when one worker is killed mid-run', async () => {
    let killed = false
    const run = autocannon({ url: `${nginx.url}/hello/greet?name=scale`, connections: 16, duration: 4 })
    const timer = setTimeout(() => { workers[1]!.child.kill('SIGKILL'); killed = true }, 1500)
    const result = await run
    clearTimeout(timer)
    expect(killed).toBe(true)
    expect(await workers[1]!.exited).toBe(null)
    expect(result.requests.total).toBeGreaterThan(100)
    expect(result.errors).toBe(0)
    expect(result.timeouts).toBe(0)
    expect(result.non2xx).toBe(0)
    // The other two still answer, and nginx noticed the dead one.
    const r = await fetch(`${nginx.url}/hello/greet?name=after`)
    expect(await r.json()).toEqual({ hello: 'after' })
  })
})
