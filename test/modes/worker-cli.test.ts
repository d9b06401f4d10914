// Worker mode through the real `resident` binary and real sockets: `--mode worker` over a config
// that says otherwise, the start-up listing and status, a hang, a crash and the heap limit with a
// neighbour served meanwhile, an admin reload, ES modules, `resident dev` saving a file under load,
// and a clean shutdown that runs dispose() in the worker.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from '../helpers/cli.ts'
import { esmProject } from '../helpers/esm-project.ts'
import { waitFor } from '../helpers/poll.ts'
import { versioned } from '../helpers/watch.ts'

const FRAGILE = `import { Extension } from 'resident-host'
import { threadId } from 'node:worker_threads'
import { appendFileSync } from 'node:fs'
import path from 'node:path'
export default class Fragile extends Extension {
  #count = 0
  dispose(reason) { appendFileSync(path.join(this.host.dir, '..', 'events.log'), 'dispose ' + this.host.generation + ' ' + reason + '\\n') }
  count() { return { count: ++this.#count, threadId } }
  spin() { for (;;) {} }
  exit() { process.exit(3) }
  // In a worker thread this is the thread's own exit code, not the host's.
  exitCode() { process.exitCode = 4; return { set: true } }
  grow() { const keep = []; for (;;) keep.push({ a: Math.random(), b: 'x'.repeat(64), c: [1, 2, 3] }) }
}
`

const STEADY = `import { Extension } from 'resident-host'
import { threadId } from 'node:worker_threads'
export default class Steady extends Extension {
  ping() { return { ok: true, threadId, generation: this.host.generation } }
  async wait() { await new Promise((r) => setTimeout(r, 200)); return { ok: true } }
}
`

const PAIR = `import { Extension } from 'resident-host'
import { threadId } from 'node:worker_threads'
export default class Pair extends Extension {
  async slow() { await new Promise((r) => setTimeout(r, 500)); return { threadId } }
  exit() { process.exit(5) }
}
`

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-worker-cli-'))
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    writeFileSync(path.join(dir, f), c)
  }
  return dir
}

interface Ext { name: string; mode: string; state: string; generation: number; memory: { heapUsed: number; heapTotal: number; external: number } | null
  runtime: { workers: Array<{ threadId: number }>; hangs: number; crashes: number; lastExit: { kind: string; message: string } | null } | null }

const ADMIN = { 'x-resident-admin': '1' }

describe('resident serve --mode worker (real binary)', () => {
  let dir: string
  let url: string
  let server: Awaited<ReturnType<typeof startCli>>
  const ext = async (name: string) => ((await (await fetch(`${url}/_resident/status`)).json()) as { host: { mode: string }; extensions: Ext[] })
  const get = async (p: string) => { const r = await fetch(url + p); return { status: r.status, body: await r.json() as Record<string, any> } }

  beforeAll(async () => {
    dir = project({
      'extensions/fragile.ts': FRAGILE,
      'extensions/steady.ts': STEADY,
      'extensions/idler.ts': STEADY,
      'extensions/pair.ts': PAIR,
      'filters/.keep': '',
      // The file says in process; --mode worker overrides it, for every extension.
      'resident.config.json': JSON.stringify({
        mode: 'inprocess', requestTimeout: '5s', rapidFail: { maxFailures: 50 },
        worker: { hangGrace: '200ms', resourceLimits: { maxOldGenerationSizeMb: 24 } },
        extensions: { steady: { mode: 'inprocess' }, idler: { idleTimeout: '500ms' }, pair: { worker: { pool: 2 } } },
      }),
    })
    server = await startCli(['serve', '-p', '0', '--mode', 'worker'], { cwd: dir, env: { NODE_ENV: '' } })
    url = server.url
  }, 60_000)
  afterAll(() => { server?.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) })

  it('lists every extension in worker mode at start-up and on the status page, with its exact heap', async () => {
    expect(server.output()).toMatch(/default mode worker/)
    expect(server.output()).toMatch(/\/fragile\/\s+worker/)
    expect(server.output()).toMatch(/\/steady\/\s+worker/)
    expect((await get('/steady/ping')).status).toBe(200)
    const s = await ext('steady')
    expect(s.host.mode).toBe('worker')
    const steady = s.extensions.find((e) => e.name === 'steady')!
    expect(steady.mode).toBe('worker')
    expect(steady.memory!.heapUsed).toBeGreaterThan(0)
    expect(steady.runtime!.workers).toHaveLength(1)
  })

  it('answers a spinning command 504 while the host serves others, and serves the next request from a fresh worker', async () => {
    const before = (await get('/fragile/count')).body
    const spinning = get('/fragile/spin')
    // The host is not the one spinning.
    expect((await get('/steady/ping')).status).toBe(200)
    const hung = await spinning
    expect(hung.status).toBe(504)
    expect(hung.body.error).toMatchObject({ code: 'RES_ERR_TIMEOUT', requestId: expect.any(String) })
    const next = await get('/fragile/count')
    expect(next.status, JSON.stringify(next.body)).toBe(200)
    expect(next.body).toMatchObject({ count: 1 })
    expect(next.body.threadId).not.toBe(before.threadId)
    const fragile = (await ext('fragile')).extensions.find((e) => e.name === 'fragile')!
    expect(fragile.runtime).toMatchObject({ hangs: 1, lastExit: { kind: 'hung' } })
  }, 30_000)

  it('answers process.exit() 502 for that request only, while a concurrent request on another extension succeeds', async () => {
    const [crashed, neighbour] = await Promise.all([get('/fragile/exit'), get('/steady/wait')])
    expect(crashed.status).toBe(502)
    expect(crashed.body.error).toMatchObject({ code: 'RES_ERR_WORKER_CRASHED', requestId: expect.any(String) })
    expect(neighbour).toEqual({ status: 200, body: { ok: true } })
    expect((await get('/fragile/count')).body).toMatchObject({ count: 1 })
  }, 30_000)

  it('spreads a pool’s requests over its workers; a crash fails only the requests on the worker that crashed', async () => {
    const [a, b] = await Promise.all([get('/pair/slow'), get('/pair/slow')])
    expect(a.status).toBe(200)
    expect(b.status).toBe(200)
    expect(a.body.threadId).not.toBe(b.body.threadId)
    // One worker busy with a slow request: the exit goes to the idle one (fewest in flight).
    const slow = get('/pair/slow')
    await waitFor(async () => (await ext('pair')).extensions.find((e) => e.name === 'pair')!.runtime!.workers.some((w) => (w as { inFlight?: number }).inFlight === 1), 'the slow request running')
    const crashed = await get('/pair/exit')
    expect(crashed.status).toBe(502)
    expect(await slow).toMatchObject({ status: 200 })
    await waitFor(async () => (await ext('pair')).extensions.find((e) => e.name === 'pair')!.runtime!.workers.length === 2, 'the pool whole again')
  }, 30_000)

  it('replaces a worker that reaches its heap limit', async () => {
    const r = await get('/fragile/grow')
    expect(r.status).toBe(502)
    expect((await get('/fragile/count')).body).toMatchObject({ count: 1 })
    const fragile = (await ext('fragile')).extensions.find((e) => e.name === 'fragile')!
    expect(fragile.runtime!.lastExit).toMatchObject({ kind: 'crash', message: 'it reached its heap limit' })
  }, 30_000)

  it('unloads an idle worker extension by ending its thread', async () => {
    const threads = () => readdirSync(`/proc/${server.child.pid}/task`).length
    const before = threads()
    expect((await get('/idler/ping')).status).toBe(200)
    await waitFor(async () => (await ext('idler')).extensions.find((e) => e.name === 'idler')?.runtime?.workers.length === 1, 'the idler’s worker')
    expect(threads()).toBe(before + 1)
    await waitFor(async () => (await ext('idler')).extensions.find((e) => e.name === 'idler')?.state === 'unloaded', 'the idle unload', 30_000)
    await waitFor(() => threads() === before, 'the worker thread gone')
  }, 60_000)

  it('reloads through the admin API into a new worker', async () => {
    const first = (await get('/steady/ping')).body
    const r = await fetch(`${url}/_resident/extensions/steady/reload`, { method: 'POST', headers: ADMIN })
    expect(r.status).toBe(200)
    const next = (await get('/steady/ping')).body
    expect(next.generation).toBe(first.generation + 1)
    expect(next.threadId).not.toBe(first.threadId)
  }, 30_000)

  it('shuts down cleanly on SIGTERM: dispose() runs in the worker, and a worker’s exit code is not the host’s', async () => {
    expect((await get('/fragile/exitCode')).body).toEqual({ set: true })
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const events = path.join(dir, 'events.log')
    expect(existsSync(events) ? readFileSync(events, 'utf8') : '').toMatch(/^dispose \d+ shutdown$/m)
  }, 30_000)
})

describe('ES modules in worker mode (real binary)', () => {
  let dir: string
  let server: Awaited<ReturnType<typeof startCli>>
  beforeAll(async () => {
    dir = esmProject().dir
    server = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters', '--mode', 'worker'], { cwd: dir })
  }, 60_000)
  afterAll(() => { server?.child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }) })

  it('imports, top-level await, JSON and import.meta work in the worker as in process', async () => {
    const r = await fetch(`${server.url}/all/everything`)
    const body = await r.json() as Record<string, any>
    expect(r.status, JSON.stringify(body)).toBe(200)
    const ext = path.join(dir, 'extensions/all')
    expect(body).toMatchObject({
      builtin: true,
      cjs: [4, 'cjs', 6, 'cjs'],
      esm: [6, 'esm-default', 'esm-default', 9],
      own: true,
      json: [true, 42, 42],
      tla: ['top-level await in the entry', 'top-level await in an import'],
      meta: {
        url: pathToFileURL(path.join(ext, 'index.ts')).href, filename: path.join(ext, 'index.ts'), dirname: ext,
        resolveCjs: pathToFileURL(path.join(dir, 'node_modules/cjs-pkg/main.js')).href, resolveBuiltin: 'node:fs',
      },
      helperMeta: { url: pathToFileURL(path.join(ext, 'lib/helper.ts')).href, dirname: path.join(ext, 'lib') },
    })
    const status = (await (await fetch(`${server.url}/_resident/status`)).json()) as { extensions: Ext[] }
    expect(status.extensions.find((e) => e.name === 'all')!.mode).toBe('worker')
  }, 30_000)
})

describe('resident dev: a saved config moves an extension between modes (real binary)', () => {
  it('reloads an extension in a worker when its mode changes, and with two workers when its pool does', async () => {
    const WHERE = `import { Extension } from 'resident-host'
import { isMainThread } from 'node:worker_threads'
export default class A extends Extension { where() { return { main: isMainThread, generation: this.host.generation } } }
`
    const dir = project({ 'extensions/a.ts': WHERE, 'filters/.keep': '', 'resident.config.json': '{}' })
    const s = await startCli(['dev', '-p', '0', '-e', 'extensions'], { cwd: dir, env: { NODE_ENV: '', NO_COLOR: '1' } })
    try {
      await waitFor(() => /watching for changes/.test(s.output()), 'the watcher started', 30_000)
      const where = async () => (await (await fetch(`${s.url}/a/where`)).json()) as { main: boolean; generation: number }
      const a = async () => ((await (await fetch(`${s.url}/_resident/status`)).json()) as { extensions: Ext[] }).extensions.find((e) => e.name === 'a')!
      expect(await where()).toEqual({ main: true, generation: 1 })
      writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify({ extensions: { a: { mode: 'worker' } } }))
      await waitFor(async () => (await where()).main === false, 'a in a worker', 30_000)
      expect(await a()).toMatchObject({ mode: 'worker', generation: 2 })
      writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify({ extensions: { a: { mode: 'worker', worker: { pool: 2 } } } }))
      await waitFor(async () => (await a()).runtime?.workers.length === 2, 'a pool of two', 30_000)
      expect((await a()).generation).toBe(3)
    } finally {
      s.child.kill('SIGTERM')
      await s.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

describe('resident dev --mode worker (real binary)', () => {
  it('hot-reloads a saved extension into a new worker without a failed request', async () => {
    const dir = project({ 'extensions/a.ts': versioned(1), 'filters/.keep': '' })
    const s = await startCli(['dev', '-p', '0', '-e', 'extensions', '--mode', 'worker'], { cwd: dir, env: { NODE_ENV: '', NO_COLOR: '1' } })
    try {
      await waitFor(() => /watching for changes/.test(s.output()), 'the watcher started', 30_000)
      const v = async () => { const r = await fetch(`${s.url}/a/v`); return r.status === 200 ? ((await r.json()) as { v: number }).v : r.status }
      expect(await v()).toBe(1)
      // Requests back to back throughout the reload: each is answered by one worker or the other.
      const seen: unknown[] = []
      let stop = false
      const load = (async () => { while (!stop) seen.push(await v()) })()
      writeFileSync(path.join(dir, 'extensions/a.ts'), versioned(2))
      await waitFor(() => seen.includes(2), 'the new code served', 30_000)
      stop = true
      await load
      expect(seen.filter((x) => x !== 1 && x !== 2)).toEqual([])
      const status = (await (await fetch(`${s.url}/_resident/status`)).json()) as { extensions: Ext[] }
      expect(status.extensions.find((e) => e.name === 'a')).toMatchObject({ mode: 'worker', generation: 2 })
    } finally {
      s.child.kill('SIGTERM')
      await s.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
