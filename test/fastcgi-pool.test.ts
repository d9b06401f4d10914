import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { text } from 'node:stream/consumers'
import pino from 'pino'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { POOL_DEFAULTS, PoolError, ProcessPool, type PoolSettings } from '../src/modes/fastcgi/pool.ts'
import { getParams } from './helpers/fcgi-raw.ts'
import { waitFor } from './helpers/poll.ts'

const ROOT = path.resolve(import.meta.dirname, '..')
let pools: ProcessPool[] = []
afterEach(async () => { await Promise.all(pools.map((p) => p.close())); pools = [] })

const SLOW = `import { Extension, param, type Params } from 'resident-host'
import { setTimeout as sleep } from 'node:timers/promises'
export default class Slow extends Extension {
  static override commands = { wait: { params: { ms: param.integer({ default: 100 }) } } }
  async wait({ ms }: Params<typeof Slow.commands.wait>) { await sleep(ms); return { waited: ms } }
}
`

async function pool(settings: Partial<PoolSettings>): Promise<{ pool: ProcessPool; logs: string[] }> {
  const logs: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write(c, _e, done) { logs.push(String(c)); done() } }))
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-pool-'))
  mkdirSync(path.join(dir, 'filters'))
  mkdirSync(path.join(dir, 'extensions'))
  for (const f of ['hello.ts', 'stream.ts']) copyFileSync(path.join(ROOT, 'extensions', f), path.join(dir, 'extensions', f))
  writeFileSync(path.join(dir, 'extensions', 'slow.ts'), SLOW)
  const p = new ProcessPool({ name: 'test', settings: { ...POOL_DEFAULTS, ...settings }, workerArgs: ['--extensions', path.join(dir, 'extensions'), '--filters', path.join(dir, 'filters')], cwd: dir, log })
  pools.push(p)
  await p.start()
  return { pool: p, logs }
}

const get = async (p: ProcessPool, uri: string) => {
  const res = await p.request({ params: getParams('GET', uri), method: 'GET', uri })
  return { status: res.status, body: await text(res.body) }
}
const pids = (p: ProcessPool) => p.workers.map((w) => w.pid).sort()

describe('the fcgi-worker process manager', () => {
  it('static: maxChildren workers from the start, one request each at a time', async () => {
    const { pool: p } = await pool({ pm: 'static', maxChildren: 3 })
    expect(p.workers.length).toBe(3)
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => get(p, `/hello/greet?name=${i}`)))
    results.forEach((r, i) => expect(r.body).toBe(`{"hello":"${i}"}`))
    const s = p.status()
    expect(s).toMatchObject({ 'process manager': 'static', 'total processes': 3, 'accepted conn': 9, 'active processes': 0 })
    expect(s['max active processes']).toBeLessThanOrEqual(3)
    const procs = s.processes as Array<Record<string, unknown>>
    expect(procs.reduce((n, w) => n + (w.requests as number), 0)).toBe(9)
    expect(procs[0]).toMatchObject({ state: 'Idle', 'request method': 'GET' })
    expect(Object.keys(procs[0]!)).toEqual(expect.arrayContaining(['pid', 'state', 'start time', 'start since', 'requests', 'request duration', 'request method', 'request uri', 'content length', 'last request cpu', 'last request memory']))
  })

  it('ondemand: no worker until a request; grows to maxChildren under load; idle ones stop after processIdleTimeout', async () => {
    const { pool: p } = await pool({ pm: 'ondemand', maxChildren: 2, processIdleTimeout: 300 })
    expect(p.workers.length).toBe(0)
    await Promise.all([get(p, '/stream/?chunks=2&delay=100'), get(p, '/stream/?chunks=2&delay=100'), get(p, '/hello/greet')])
    expect(p.status()['max children reached']).toBeGreaterThan(0)
    expect(p.workers.length).toBeLessThanOrEqual(2)
    await waitFor(() => p.workers.length === 0, 'idle workers to stop')
  })

  it('dynamic: keeps spare servers between min and max', async () => {
    const { pool: p } = await pool({ pm: 'dynamic', maxChildren: 5, startServers: 2, minSpareServers: 2, maxSpareServers: 3 })
    expect(p.workers.length).toBe(2)
    // Two long requests make the two idle ones busy: the pool spawns spares to stay at minSpare.
    const slow = [get(p, '/slow/wait?ms=4000'), get(p, '/slow/wait?ms=4000')]
    expect(p.workers.length).toBe(4)
    await waitFor(() => p.workers.filter((w) => w.state === 'Idle').length === 2, 'spare servers')
    await Promise.all(slow)
    // Four idle is above maxSpare 3: one is stopped.
    await waitFor(() => p.workers.length === 3, 'a surplus spare to stop')
  })

  it('dynamic: a steady load does not churn workers (a surplus spare is stopped only after idling through a maintenance pass)', async () => {
    const { pool: p } = await pool({ pm: 'dynamic', maxChildren: 2, startServers: 1, minSpareServers: 1, maxSpareServers: 1 })
    const seen = new Set(pids(p))
    // Each request makes the one idle worker busy (a spare is spawned); once it ends two are idle,
    // one above maxSpare. Stopping that one at once would spawn another on the next request.
    for (let i = 0; i < 30; i++) {
      expect((await get(p, '/hello/greet')).status).toBe(200)
      for (const pid of pids(p)) seen.add(pid)
    }
    expect(seen.size).toBeLessThanOrEqual(3)
  })

  it('maxRequests: a worker is replaced after that many requests', async () => {
    const { pool: p } = await pool({ pm: 'static', maxChildren: 1, maxRequests: 3 })
    const first = pids(p)
    for (let i = 0; i < 3; i++) await get(p, '/hello/greet')
    await waitFor(() => p.workers.length === 1 && pids(p)[0] !== first[0] && p.workers[0]!.state === 'Idle', 'the recycled worker')
    expect((await get(p, '/hello/greet')).status).toBe(200)
    expect(p.status().respawns).toBe(0)
  })

  it('terminateTimeout: a request running too long kills its worker and fails as a timeout; a new worker takes over', async () => {
    const { pool: p, logs } = await pool({ pm: 'static', maxChildren: 1, terminateTimeout: 400, slowlogTimeout: 150 })
    const before = pids(p)
    const err = await p.request({ params: getParams('GET', '/slow/wait?ms=5000'), method: 'GET', uri: '/slow/wait' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PoolError)
    expect((err as PoolError).kind).toBe('timeout')
    expect(logs.join('')).toMatch(/slow request: GET \/slow\/wait/)
    expect(p.status()['slow requests']).toBe(1)
    await waitFor(() => p.workers.length === 1 && pids(p)[0] !== before[0], 'a replacement')
    expect((await get(p, '/hello/greet')).status).toBe(200)
  })

  it('a crashed worker is respawned and its request fails as crashed; others are untouched', async () => {
    const { pool: p, logs } = await pool({ pm: 'static', maxChildren: 2 })
    const pending = p.request({ params: getParams('GET', '/stream/?chunks=3&delay=1000'), method: 'GET', uri: '/stream/' })
    await waitFor(() => p.workers.some((w) => w.state === 'Running'), 'a running worker')
    const victim = p.workers.find((w) => w.state === 'Running')!
    process.kill(victim.pid, 'SIGKILL')
    const err = await pending.then((r) => text(r.body)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    await waitFor(() => p.workers.length === 2 && !pids(p).includes(victim.pid), 'the respawn')
    expect(p.status().respawns).toBe(1)
    expect(logs.join('')).toMatch(/exited unexpectedly \(SIGKILL\)/)
    expect((await get(p, '/hello/greet')).status).toBe(200)
  })

  it('emergency restart: crashes past the threshold within the interval reload the whole pool', async () => {
    const { pool: p, logs } = await pool({ pm: 'static', maxChildren: 2, emergencyRestartThreshold: 2, emergencyRestartInterval: 60_000 })
    for (let i = 0; i < 2; i++) {
      const w = p.workers.find((x) => x.state === 'Idle')!
      process.kill(w.pid, 'SIGKILL')
      await waitFor(() => !pids(p).includes(w.pid), 'the crash to be seen')
    }
    await waitFor(() => /failed processes threshold \(2 in 60 sec\) is reached, initiating reload/.test(logs.join('')), 'the emergency reload')
    await waitFor(() => p.workers.length === 2 && p.workers.every((w) => w.state === 'Idle'), 'a fresh pool')
    expect((await get(p, '/hello/greet')).status).toBe(200)
  })

  it('a graceful reload drains: a running request finishes on its old worker; new requests go to new workers', async () => {
    const { pool: p } = await pool({ pm: 'static', maxChildren: 1 })
    const old = pids(p)[0]
    const running = get(p, '/stream/?chunks=3&delay=200')
    await waitFor(() => p.workers.some((w) => w.state === 'Running'), 'the request to start')
    await p.reload()
    expect(pids(p)).not.toContain(undefined)
    const fresh = await get(p, '/hello/greet')
    expect(fresh.status).toBe(200)
    expect((await running).body).toBe('chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n')
    await waitFor(() => !pids(p).includes(old!), 'the old worker to exit')
    expect(p.status().respawns).toBe(0)
  })
})
