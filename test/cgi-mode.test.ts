import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import { CgiExecutor } from '../src/modes/cgi/executor.ts'
import { buildServer, type ResidentServer } from '../src/server/app.ts'
import { waitFor } from './helpers/poll.ts'

const repo = path.resolve(import.meta.dirname, '..')
let dir: string
let server: ResidentServer
let base: string
const logs: Array<Record<string, unknown>> = []
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-cgi-mode-'))
  const ext = path.join(dir, 'extensions')
  const flt = path.join(dir, 'filters')
  mkdirSync(ext)
  mkdirSync(flt)
  for (const f of ['hello.ts', 'counter.ts', 'stream.ts']) writeFileSync(path.join(ext, f), readFileSync(path.join(repo, 'extensions', f)))
  writeFileSync(path.join(ext, 'probe.ts'), `import { Extension, HttpError } from 'resident-host'
export default class Probe extends Extension {
  static commands = { echo: { methods: ['POST', 'PUT'] }, pid: {}, slow: {} }
  echo(params, request) { return { params, body: request.body, id: request.id, user: request.user ?? null, config: this.host.config } }
  teapot() { throw new HttpError(418, 'short and stout', { code: 'TEAPOT', data: { spout: true } }) }
  boom() { throw new Error('kaboom') }
  pid() { return { pid: process.pid } }
  async slow() {
    const { spawn } = require('node:child_process')
    const child = spawn('sleep', ['30'], { stdio: 'ignore' })
    require('node:fs').writeFileSync(${JSON.stringify(path.join(dir, 'grandchild.pid'))}, String(child.pid))
    await new Promise((r) => setTimeout(r, 30000))
  }
}`)
  writeFileSync(path.join(flt, 'who.ts'), `import { Filter } from 'resident-host'
export default class Who extends Filter {
  onAuthenticate(req) { if (req.headers['x-user']) req.user = { name: req.headers['x-user'] } }
}`)
  const sink = new Writable({ write(chunk, _e, done) { for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l)); done() } })
  const config = resolveConfig({ mode: 'cgi', extensionsDir: ext, filtersDir: flt, requestTimeout: 1500, extensions: { probe: { config: { answer: 42 } } } }, { cwd: dir })
  server = await buildServer(config, { logger: pino({ level: 'debug' }, sink), executors: { cgi: new CgiExecutor({ cacheDir: path.join(dir, 'cache'), bodyLimit: config.bodyLimit }) } })
  base = await server.app.listen({ port: 0, host: '127.0.0.1' })
})

afterAll(async () => {
  await server?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('the cgi mode: a process per request', () => {
  it('serves an unchanged extension', async () => {
    const res = await fetch(`${base}/hello/greet?name=cgi`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(await res.json()).toEqual({ hello: 'cgi' })
    const page = await fetch(`${base}/hello/`)
    expect(await page.text()).toContain('Hello from Resident')
  })

  it('each request is a new process', async () => {
    const a = await (await fetch(`${base}/probe/pid`)).json()
    const b = await (await fetch(`${base}/probe/pid`)).json()
    expect(a.pid).not.toBe(b.pid)
    expect(a.pid).not.toBe(process.pid)
  })

  it('state does not survive between requests: that is what this mode teaches', async () => {
    expect(await (await fetch(`${base}/counter/increment`)).json()).toEqual({ count: 1 })
    expect(await (await fetch(`${base}/counter/increment`)).json()).toEqual({ count: 1 })
  })

  it('params, body, request id, the filter\'s user and the extension config cross the process', async () => {
    const res = await fetch(`${base}/probe/echo?q=1`, { method: 'POST', body: JSON.stringify({ b: [1, 2] }), headers: { 'content-type': 'application/json', 'x-user': 'carol', 'x-request-id': 'ignored' } })
    const body = await res.json()
    expect(body).toMatchObject({ params: { q: '1', b: [1, 2] }, body: { b: [1, 2] }, user: { name: 'carol' }, config: { answer: 42 } })
    expect(typeof body.id).toBe('string')
  })

  it('errors keep their status, code, data and the host\'s request id', async () => {
    const res = await fetch(`${base}/probe/teapot`)
    expect(res.status).toBe(418)
    const { error } = await res.json()
    expect(error).toMatchObject({ code: 'TEAPOT', message: 'short and stout', data: { spout: true } })
    // The host's id (its generator's form), not one the runner made up.
    expect(error.requestId).toMatch(/^[0-9a-f]+-\d+$/)
    const boom = await fetch(`${base}/probe/boom`)
    expect(boom.status).toBe(500)
    expect((await boom.json()).error.code).toBe('RES_ERR_COMMAND_FAILED')
    // The failure's stack crosses in the error record and is logged by the host, as in process.
    await waitFor(() => logs.some((l) => JSON.stringify(l).includes('kaboom')), 'the failure in the host\'s log')
    expect((await fetch(`${base}/probe/nope`)).status).toBe(404)
    expect((await fetch(`${base}/probe/echo`)).status).toBe(405)
  })

  it('streams stay streams', async () => {
    const res = await fetch(`${base}/stream/?chunks=3&delay=10`)
    expect(await res.text()).toBe('chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n')
  })

  it('past the deadline: 504, and the process group is killed', async () => {
    const res = await fetch(`${base}/probe/slow`)
    expect(res.status).toBe(504)
    const pid = Number(await waitFor(() => { try { return readFileSync(path.join(dir, 'grandchild.pid'), 'utf8') } catch { return '' } }, 'the grandchild pid'))
    await waitFor(() => !alive(pid), 'the grandchild to die')
  })
})
