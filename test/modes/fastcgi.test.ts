import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { behaviourSuite } from './behaviour.ts'
import { startTestServer } from '../helpers/server.ts'
import { startWorker } from '../helpers/fcgi.ts'
import { waitFor } from '../helpers/poll.ts'

// One worker per pool, so "state across requests" is one instance's state (each worker process
// has its own, as PHP-FPM's do). Nothing is skipped: init() and dispose(reason) run in the worker
// with the host's generation number and the host's reason.
behaviourSuite('fastcgi', { config: { pool: { pm: 'static', maxChildren: 1 } } })

describe('fastcgi mode: the pool behind an extension', () => {
  const ROOT = path.resolve(import.meta.dirname, '../..')

  it('runs commands in worker processes, shows the pool on the status page, and stops it on unload', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', pool: { pm: 'dynamic', maxChildren: 3, minSpareServers: 1, maxSpareServers: 2 } } })
    try {
      t.writeExtension('pid.ts', `import { Extension } from 'resident-host'
export default class Pid extends Extension { which() { return { pid: process.pid } } }`)
      const r = (await t.inject('/pid/which')).json() as { pid: number }
      expect(r.pid).not.toBe(process.pid)
      const status = (await t.inject('/_resident/status')).json() as { extensions: Array<{ name: string; mode: string; [k: string]: unknown }> }
      const pid = status.extensions.find((e) => e.name === 'pid')!
      expect(JSON.stringify(pid)).toContain('"process manager":"dynamic"')
      expect(JSON.stringify(pid)).toContain(`"pid":${r.pid}`)
      await t.inject({ method: 'POST', url: '/_resident/extensions/pid/unload', headers: { 'x-resident-admin': '1' } })
      await waitFor(() => { try { process.kill(r.pid, 0); return false } catch { return true } }, 'the worker to exit after the unload')
    } finally { await t.close() }
  })

  it('a worker that crashes mid-request answers 502, and the next request is served by a new worker', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', pool: { pm: 'static', maxChildren: 1 } } })
    try {
      t.writeExtension('crashy.ts', `import { Extension } from 'resident-host'
export default class Crashy extends Extension {
  which() { return { pid: process.pid } }
  async hang() { await new Promise(() => {}) }
}`)
      const { pid } = (await t.inject('/crashy/which')).json() as { pid: number }
      const pending = t.inject('/crashy/hang')
      await new Promise((r) => setTimeout(r, 300))
      process.kill(pid, 'SIGKILL')
      const r = await pending
      expect(r.statusCode).toBe(502)
      expect(r.json().error.code).toBe('RES_ERR_FASTCGI_CLOSED')
      const next = (await t.inject('/crashy/which')).json() as { pid: number }
      expect(next.pid).not.toBe(pid)
    } finally { await t.close() }
  })

  it('a worker that spins past the deadline is judged hung, killed and replaced: the next request is served', async () => {
    // No terminateTimeout: the host's own deadline and the pool's hang check must free the pool.
    const t = await startTestServer({ config: { mode: 'fastcgi', requestTimeout: '700ms', pool: { pm: 'static', maxChildren: 1, hangGrace: '300ms' } } })
    try {
      t.writeExtension('spin.ts', `import { Extension } from 'resident-host'
export default class Spin extends Extension {
  which() { return { pid: process.pid } }
  forever() { for (;;) {} }
}`)
      const { pid } = (await t.inject('/spin/which')).json() as { pid: number }
      const r = await t.inject('/spin/forever')
      expect(r.statusCode).toBe(504)
      expect(r.json().error.code).toBe('RES_ERR_TIMEOUT')
      await waitFor(() => { try { process.kill(pid, 0); return false } catch { return true } }, 'the hung worker to be killed')
      // The replacement starts in about a second on a loaded machine, longer than the deadline here.
      await waitFor(async () => JSON.stringify((await t.inject('/_resident/status')).json()).includes('"idle processes":1'), 'the replacement to listen')
      const next = await t.inject('/spin/which')
      expect(next.statusCode).toBe(200)
      expect((next.json() as { pid: number }).pid).not.toBe(pid)
      const status = (await t.inject('/_resident/status')).json() as { extensions: Array<{ name: string; [k: string]: unknown }> }
      expect(JSON.stringify(status.extensions.find((e) => e.name === 'spin'))).toContain('"hung processes":1')
    } finally { await t.close() }
  })

  it('a worker left spinning by a client that went away is replaced too', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', requestTimeout: 0, pool: { pm: 'static', maxChildren: 1, hangGrace: '300ms' } } })
    try {
      t.writeExtension('spin.ts', `import { Extension } from 'resident-host'
export default class Spin extends Extension {
  which() { return { pid: process.pid } }
  forever() { for (;;) {} }
}`)
      const base = await t.listen()
      const { pid } = (await t.inject('/spin/which')).json() as { pid: number }
      await new Promise<void>((resolve) => {
        const req = http.get(`${base}/spin/forever`)
        req.on('error', () => resolve())
        setTimeout(() => { req.destroy(); resolve() }, 500)
      })
      await waitFor(() => { try { process.kill(pid, 0); return false } catch { return true } }, 'the spinning worker to be killed')
      expect((await t.inject('/spin/which')).statusCode).toBe(200)
    } finally { await t.close() }
  })

  it('idle eviction asks the workers\' canUnload() with the host\'s reason, then stops the pool; dispose sees "idle"', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', idleTimeout: '300ms', memory: { checkInterval: '100ms' }, unload: { maxDeclines: 2 }, pool: { pm: 'static', maxChildren: 2 } } })
    try {
      t.writeExtension('sticky.ts', `import { Extension } from 'resident-host'
import { appendFileSync } from 'node:fs'
import path from 'node:path'
export default class Sticky extends Extension {
  _note(line) { appendFileSync(path.join(this.host.dir, '..', 'sticky.log'), line + '\\n') }
  canUnload(reason) { this._note('asked ' + reason + ' ' + process.pid); return false }
  dispose(reason) { this._note('dispose ' + this.host.generation + ' ' + reason) }
  which() { return { pid: process.pid } }
}`)
      // Two requests at once: both workers load the extension, so both have an instance to ask.
      const pids = (await Promise.all([t.inject('/sticky/which'), t.inject('/sticky/which')])).map((r) => (r.json() as { pid: number }).pid)
      const log = () => { try { return readFileSync(path.join(t.dir, 'sticky.log'), 'utf8') } catch { return '' } }
      await waitFor(() => pids.every((pid) => { try { process.kill(pid, 0); return false } catch { return true } }), 'the pool to stop after the forced idle unload')
      expect(log()).toMatch(/^asked idle \d+$/m)
      expect(t.logs.filter((l) => /sticky declined a idle unload/.test(l.msg))).toHaveLength(2)
      expect(log()).toMatch(/^dispose \d+ idle$/m)
      expect(log()).not.toMatch(/shutdown/)
    } finally { await t.close() }
  })

  it('the RSS budget counts the pool\'s workers: memory pressure evicts the extension and its workers exit', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', pool: { pm: 'static', maxChildren: 1 } } })
    try {
      t.writeExtension('holder.ts', `import { Extension } from 'resident-host'
export default class Holder extends Extension {
  chunks = []
  init() { for (let i = 0; i < 64; i++) this.chunks.push(Buffer.alloc(1024 * 1024, i + 1)) }
  where() { return { pid: process.pid, mb: this.chunks.length } }
}`)
      const { pid } = (await t.inject('/holder/where')).json() as { pid: number; mb: number }
      const memory = async () => ((await t.inject('/_resident/status')).json() as { host: { memory: { rss: number; processesRss: number } } }).host.memory
      await waitFor(async () => (await memory()).processesRss >= 64 * 1024 ** 2, 'the worker\'s 64 MB counted')
      const m = await memory()
      // A budget the host alone stays under, but not with its pool: only evicting the pool helps.
      t.server.config.memory.budget = Math.floor(m.rss + m.processesRss - 32 * 1024 ** 2)
      expect(m.rss).toBeLessThan(t.server.config.memory.budget)
      await t.server.registry.evictor.check()
      await waitFor(() => t.logs.some((l) => /evicting holder \(memory pressure/.test(l.msg)), 'holder evicted')
      await waitFor(() => { try { process.kill(pid, 0); return false } catch { return true } }, 'the pool\'s worker to exit')
      t.server.config.memory.budget = null
    } finally { await t.close() }
  })

  it('a hot reload starts the next generation\'s pool; a request in flight finishes on the old pool, whose workers then dispose("reload") and exit', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', pool: { pm: 'static', maxChildren: 2 } } })
    try {
      t.writeExtension('gen.ts', `import { Extension } from 'resident-host'
import { appendFileSync } from 'node:fs'
import path from 'node:path'
export default class Gen extends Extension {
  dispose(reason) { appendFileSync(path.join(this.host.dir, '..', 'gen.log'), 'dispose ' + this.host.generation + ' ' + reason + ' ' + process.pid + '\\n') }
  where() { return { pid: process.pid, generation: this.host.generation } }
  async slow() { await new Promise((r) => setTimeout(r, 600)); return { pid: process.pid, generation: this.host.generation } }
}`)
      const first = (await t.inject('/gen/where')).json() as { pid: number; generation: number }
      const inFlight = t.inject('/gen/slow')
      await waitFor(async () => JSON.stringify((await t.inject('/_resident/status')).json()).includes('"request uri":"/gen/slow"'), 'the slow request to run')
      const gen = await t.server.registry.reload('gen')
      expect(gen.id).toBe(first.generation + 1)
      const next = (await t.inject('/gen/where')).json() as { pid: number; generation: number }
      expect(next.generation).toBe(first.generation + 1)
      const slow = await inFlight
      expect(slow.statusCode).toBe(200)
      expect((slow.json() as { generation: number }).generation).toBe(first.generation)
      expect(next.pid).not.toBe((slow.json() as { pid: number }).pid)
      const log = () => { try { return readFileSync(path.join(t.dir, 'gen.log'), 'utf8') } catch { return '' } }
      await waitFor(() => log().includes(`dispose ${first.generation} reload`), 'the old workers to dispose with "reload"')
      await waitFor(() => { try { process.kill(first.pid, 0); return false } catch { return true } }, 'the old pool to exit')
      expect(log()).not.toMatch(/shutdown/)
    } finally { await t.close() }
  })

  it('terminateTimeout kills a stuck worker and answers 504', async () => {
    const t = await startTestServer({ config: { mode: 'fastcgi', requestTimeout: 0, pool: { pm: 'static', maxChildren: 1, terminateTimeout: '500ms' } } })
    try {
      t.writeExtension('spin.ts', `import { Extension } from 'resident-host'
export default class Spin extends Extension { forever() { for (;;) {} } }`)
      const r = await t.inject('/spin/forever')
      expect(r.statusCode).toBe(504)
      expect(r.json().error.code).toBe('RES_ERR_TIMEOUT')
    } finally { await t.close() }
  })
})

describe('fastcgi mode with a pool someone else runs (extensions.<name>.fastcgi.address)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-external-pool-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('sends the commands to the workers at the address', async () => {
    const ROOT = path.resolve(import.meta.dirname, '../..')
    const worker = await startWorker(['--listen', `unix:${dir}/ext.sock`, '--extensions', path.join(ROOT, 'extensions'), '--filters', dir], { cwd: dir })
    const t = await startTestServer({ config: { extensions: { hello: { mode: 'fastcgi', fastcgi: { address: `unix:${dir}/ext.sock` } } } } })
    try {
      t.writeExtension('hello.ts', readFileSync(path.join(ROOT, 'extensions', 'hello.ts'), 'utf8'))
      expect((await t.inject('/hello/greet?name=far')).json()).toEqual({ hello: 'far' })
      expect((await t.inject('/hello/greet?name=' + 'x'.repeat(101))).statusCode).toBe(400)
    } finally { await t.close(); worker.child.kill('SIGKILL') }
  })
})

describe('fastcgi mode settings', () => {
  it('validates pool and fastcgi settings, with PHP-FPM\'s consistency rules', async () => {
    const { resolveConfig } = await import('../../src/config/load.ts')
    const ok = resolveConfig({ pool: { pm: 'ondemand', maxChildren: 2 }, extensions: { a: { mode: 'fastcgi', pool: { maxRequests: 10, terminateTimeout: '5s', hangGrace: '2s' } }, b: { mode: 'fastcgi', fastcgi: { address: ['127.0.0.1:9000', 'unix:/run/x.sock'] } } } })
    expect(ok.extensions.a!.pool).toMatchObject({ pm: 'ondemand', maxChildren: 2, maxRequests: 10, terminateTimeout: 5000, hangGrace: 2000 })
    expect(ok.extensions.b!.fastcgi).toEqual({ addresses: ['127.0.0.1:9000', 'unix:/run/x.sock'], maxConns: undefined })
    expect(() => resolveConfig({ pool: { pm: 'sometimes', maxChildren: 0, minSpareServers: 5, maxSpareServers: 2, bogus: 1, hangGrace: '5ms' }, extensions: { c: { fastcgi: { address: 'nowhere' } } } }))
      .toThrow(/"pool.pm" must be one of static, dynamic, ondemand[\s\S]*"pool.maxChildren" must be an integer from 1 to 256[\s\S]*unknown setting "pool.bogus"[\s\S]*"pool.hangGrace" must be a duration of at least 10 ms[\s\S]*minSpareServers \(5\) is above maxSpareServers \(2\)[\s\S]*"extensions.c.fastcgi.address" must be/)
  })
})
