import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import http from 'node:http'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { respawnDelay } from '../src/cluster/primary.ts'
import { startCli } from './helpers/cli.ts'
import { waitFor } from './helpers/poll.ts'
import { parsePrometheusText, sampleValue } from './helpers/prom-text.ts'

const repo = path.resolve(import.meta.dirname, '..')

interface Status { host: { pid: number }; cluster?: { processes: Array<{ host: { pid: number }; extensions: Array<{ name: string; generation: number | null; state: string }> }> } }

describe('resident serve --workers 2', () => {
  let dir: string
  let server: Awaited<ReturnType<typeof startCli>>
  // A fresh connection per request (fetch keeps connections alive and may not be told otherwise),
  // so that the primary hands each to the next process in turn.
  const get = (p: string) => new Promise<{ status: number; text: () => Promise<string>; json: () => Promise<unknown> }>((resolve, reject) => {
    const req = http.get(`${server.url}${p}`, { agent: false, headers: { connection: 'close' }, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, text: async () => body, json: async () => JSON.parse(body) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)))
    req.on('error', reject)
  })
  const status = async () => (await (await get('/_resident/status')).json()) as Status
  const pids = async () => (await status()).cluster!.processes.map((p) => p.host.pid).sort()

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-cluster-'))
    mkdirSync(path.join(dir, 'extensions'))
    mkdirSync(path.join(dir, 'filters'))
    copyFileSync(path.join(repo, 'extensions/hello.ts'), path.join(dir, 'extensions/hello.ts'))
    server = await startCli(['serve', '--port', '0', '--workers', '2'], { cwd: dir, env: { NODE_ENV: 'production' } })
    await waitFor(async () => (await pids()).length === 2, 'both workers to serve')
  }, 60_000)

  afterAll(async () => {
    if (server && server.child.exitCode === null) { server.child.kill('SIGKILL'); await server.exited }
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves from two processes, and status covers both', async () => {
    const answering = new Set<number>()
    for (let i = 0; i < 12; i++) answering.add((await status()).host.pid)
    expect(answering.size).toBe(2)
    expect([...answering].sort()).toEqual(await pids())
    expect(answering.has(server.child.pid!)).toBe(false)
  })

  it('metrics sum the traffic of every process', async () => {
    for (let i = 0; i < 20; i++) expect((await get('/hello/greet?name=m')).status).toBe(200)
    const m = parsePrometheusText(await (await get('/_resident/metrics')).text())
    expect(sampleValue(m, 'resident_requests_total', { extension: 'hello', status_class: '2xx' })).toBe(20)
    expect(sampleValue(m, 'resident_extension_resident', { extension: 'hello' })).toBe(2)
  })

  it('respawns a process that dies', async () => {
    const before = await pids()
    process.kill(before[0]!, 'SIGKILL')
    const after = await waitFor(async () => {
      try { const p = await pids(); return p.length === 2 && !p.includes(before[0]!) ? p : null } catch { return null }
    }, 'a new worker in place of the killed one', 30_000).catch((e: Error) => { throw new Error(`${e.message}\n${server.output().slice(-3000)}`) })
    expect(after).toContain(before[1])
    // The primary's line names the dead worker without clobbering the line's own pid (JSON with two "pid" keys).
    // The primary's log is buffered (flushed every log.flushInterval): wait for the line, not the respawn.
    const died = await waitFor(() => server.output().split('\n').find((l) => l.includes(`(pid ${before[0]}) died`)), 'the primary to log the death')
    expect(died.match(/"pid":/g)).toHaveLength(1)
    expect(JSON.parse(died)).toMatchObject({ pid: server.child.pid, workerPid: before[0], signal: 'SIGKILL' })
  }, 40_000)

  it('rolls reloads (admin API and SIGHUP) through the processes with no failed request', async () => {
    const generations = async () => (await status()).cluster!.processes.map((p) => p.extensions.find((e) => e.name === 'hello')?.generation ?? 0)
    await Promise.all([get('/hello/greet'), get('/hello/greet'), get('/hello/greet')])
    const start = Math.min(...await generations())
    let stop = false
    let ok = 0
    const failures: string[] = []
    const client = async () => {
      while (!stop) {
        try {
          const r = await fetch(`${server.url}/hello/greet?name=load`)
          const body = await r.text()
          if (r.status === 200 && body.includes('load')) ok++
          else failures.push(`${r.status} ${body}`)
        } catch (e) {
          failures.push(String(e))
        }
      }
    }
    const clients = Array.from({ length: 6 }, client)
    try {
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`${server.url}/_resident/extensions/hello/reload`, { method: 'POST', headers: { 'x-resident-admin': 'test' } })
        expect(r.status).toBe(200)
        expect(((await r.json()) as { processes: unknown[] }).processes).toHaveLength(2)
      }
      const afterAdmin = start + 2
      expect(Math.min(...await generations())).toBeGreaterThanOrEqual(afterAdmin)
      server.child.kill('SIGHUP')
      await waitFor(async () => Math.min(...await generations()) >= afterAdmin + 1, 'the SIGHUP reload to reach both processes', 30_000)
    } finally {
      stop = true
      await Promise.all(clients)
    }
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(50)
  }, 60_000)

  it('SIGTERM drains every process and the primary exits 0', async () => {
    const workers = await pids()
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow()
    expect(server.output()).toContain('every worker stopped')
  }, 60_000)
})

describe('respawn backoff', () => {
  it('respawns at once the first time, then waits 250 ms doubling up to 30 s while the process keeps dying young', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 20].map(respawnDelay)).toEqual([0, 250, 500, 1000, 2000, 16_000, 30_000, 30_000])
  })
})
