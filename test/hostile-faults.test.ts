import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { until } from './helpers/watch.ts'

// Through the real `resident` binary: only a separate process can show the host surviving a
// fault, or draining and exiting.

const BOMB = `import { Extension } from 'resident-host'
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs'

export default class Bomb extends Extension {
  timer() {
    setTimeout(() => {
      throw new Error('thrown from a timer after the answer')
    }, 20)
    return 'answered'
  }
  emitter() {
    const e = new EventEmitter()
    setTimeout(() => e.emit('error', new Error('an error event nobody listens to')), 20)
    return 'answered'
  }
  rejection() {
    setTimeout(() => { void Promise.reject(new Error('a rejection nobody handles')) }, 20)
    return 'answered'
  }
  microtask() {
    queueMicrotask(() => { throw new Error('thrown from a microtask') })
    return 'answered'
  }
  viaHost() {
    this.host.setTimeout(() => { void Promise.reject(new Error('rejected in a host timer')) }, 20)
    return 'answered'
  }
  rethrow() {
    // Node's own error, whose stack names no extension: only the async context can tell whose it is.
    readFile('/nonexistent/resident-fault-test', (err) => { if (err) throw err })
    return 'answered'
  }
  generation() { return { generation: this.host.generation } }
}
`

// Host-level code no extension owns: a preload that throws when told to (a bug in the host, as far
// as Resident can tell).
const PRELOAD = `process.on('SIGUSR2', () => { setImmediate(() => { throw new Error('a fault in no extension') }) })`

const SLOW = `import { Extension } from 'resident-host'
export default class Slow extends Extension { async index() { await new Promise((r) => setTimeout(r, 700)); return 'finished' } }`

const dirs: string[] = []
const children: Array<{ child: import('node:child_process').ChildProcess; exited: Promise<number | null> }> = []
afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) { c.child.kill('SIGKILL'); await c.exited }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function serve(files: Record<string, string>, env: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-faults-'))
  dirs.push(dir)
  mkdirSync(path.join(dir, 'extensions'))
  mkdirSync(path.join(dir, 'filters'))
  for (const [f, c] of Object.entries(files)) writeFileSync(path.join(dir, f), c)
  const config = files['resident.config.json'] !== undefined ? ['-c', 'resident.config.json'] : []
  const started = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters', ...config], { cwd: dir, env: { NODE_ENV: '', ...env } })
  children.push(started)
  return { ...started, dir }
}

interface Status { extensions: Array<{ name: string; generation: number | null; faults: { count: number; last: { message: string } | null }; unloads: Record<string, number> }> }

// Pollution after the answer, from a timer: outside any check around a command. Packages in the
// host walk objects with for…in (prom-client's label validation does), so the key, had it landed,
// would make them throw where nobody can be blamed, and the host would exit.
const LATE_POLLUTER = `import { Extension } from 'resident-host'
export default class LatePolluter extends Extension {
  index() {
    setTimeout(() => { Object.prototype.late = 'x' }, 20)
    return 'answered'
  }
  array() {
    setTimeout(() => { Array.prototype.lateItem = 'x' }, 20)
    return 'answered'
  }
  generation() { return { generation: this.host.generation } }
}`

const INSPECT = `import { Extension } from 'resident-host'
export default class Inspect extends Extension {
  index() {
    const object = []; for (const k in {}) object.push(k)
    const array = []; for (const k in []) array.push(k)
    return { object, array }
  }
}`

describe('an extension polluting a shared prototype outside any request', () => {
  it.each([['index', 'late'], ['array', 'lateItem']])('(%s) cannot: the shared prototypes are sealed, the fault retires its generation, the host and its metrics keep working', async (command, key) => {
    const s = await serve({ 'extensions/polluter.ts': LATE_POLLUTER, 'extensions/inspect.ts': INSPECT })
    expect(await (await fetch(`${s.url}/polluter/${command}`)).text()).toBe('answered')
    const status = await until(async () => {
      const st = await (await fetch(`${s.url}/_resident/status`)).json() as Status
      const p = st.extensions.find((e) => e.name === 'polluter')!
      return p.unloads.fault === 1 ? p : null
    }, 'the fault traced to the polluter and its generation retired')
    expect(status.faults.last?.message).toContain(key)
    // Prometheus' client walks label objects with for…in on every scrape and observation.
    const metrics = await fetch(`${s.url}/_resident/metrics`)
    expect(metrics.status).toBe(200)
    expect(await (await fetch(`${s.url}/inspect/`)).json()).toEqual({ object: [], array: [] })
    expect(await (await fetch(`${s.url}/polluter/generation`)).json()).toEqual({ generation: 2 })
    expect(s.child.exitCode).toBeNull()
    expect(s.output()).not.toMatch(/a fault no extension or filter can be blamed for/)
  })
})

const STACK_TRACING = JSON.stringify({ faultTracing: 'stack' })

describe('an exception outside any request', () => {
  it.each([
    ['timer', 'context', 'thrown from a timer after the answer'],
    ['emitter', 'context', 'an error event nobody listens to'],
    ['rejection', 'context', 'a rejection nobody handles'],
    ['microtask', 'context', 'thrown from a microtask'],
    ['viaHost', 'context', 'rejected in a host timer'],
    ['rethrow', 'context', "ENOENT: no such file or directory, open '/nonexistent/resident-fault-test'"],
    // Stack tracing finds the extension's compiled file in each of these errors' stacks.
    ['timer', 'stack', 'thrown from a timer after the answer'],
    ['emitter', 'stack', 'an error event nobody listens to'],
    ['rejection', 'stack', 'a rejection nobody handles'],
    ['microtask', 'stack', 'thrown from a microtask'],
  ])('traced to an extension (%s, faultTracing %s): logged, counted, that generation retired, the host keeps serving', async (command, tracing, message) => {
    const s = await serve({ 'extensions/bomb.ts': BOMB, ...(tracing === 'stack' ? { 'resident.config.json': STACK_TRACING } : {}) })
    expect(await (await fetch(`${s.url}/bomb/generation`)).json()).toEqual({ generation: 1 })
    expect(await (await fetch(`${s.url}/bomb/${command}`)).text()).toBe('answered')
    const status = await until(async () => {
      const st = await (await fetch(`${s.url}/_resident/status`)).json() as Status
      const bomb = st.extensions.find((e) => e.name === 'bomb')!
      return bomb.faults.count === 1 && bomb.unloads.fault === 1 ? bomb : null
    }, 'the fault counted and the generation retired')
    expect(status.faults.last?.message).toBe(message)
    // The log (buffered: wait for it) names the source line in bomb.ts, not the bundle (Node's
    // own errors have no stack to map).
    await until(() => /outside any request/.test(s.output()) || null, 'the fault logged')
    if (command !== 'rethrow') expect(s.output()).toMatch(new RegExp(`bomb\\.ts:\\d+:\\d+`))
    expect(s.output()).not.toMatch(/bomb\.ts\?gen=/)
    // A fresh generation serves the next request; the process never stopped.
    expect(await (await fetch(`${s.url}/bomb/generation`)).json()).toEqual({ generation: 2 })
    expect(s.child.exitCode).toBeNull()
  })

  it('with faultTracing "stack", an error whose stack names no extension is traced to nobody: the host drains and exits', async () => {
    const s = await serve({ 'extensions/bomb.ts': BOMB, 'resident.config.json': STACK_TRACING })
    expect(await (await fetch(`${s.url}/bomb/rethrow`)).text()).toBe('answered')
    expect(await s.exited).toBe(1)
    expect(s.output()).toMatch(/a fault no extension or filter can be blamed for/)
    expect(s.output()).toContain('resident-fault-test')
  })

  it('traced to nobody: logged, in-flight requests drain, and the process exits non-zero', async () => {
    const s = await serve({ 'extensions/slow.ts': SLOW, 'preload.cjs': PRELOAD }, { NODE_OPTIONS: '--require ./preload.cjs' })
    const inflight = fetch(`${s.url}/slow/`).then(async (r) => ({ status: r.status, text: await r.text() }))
    await new Promise((r) => setTimeout(r, 150))
    s.child.kill('SIGUSR2')
    expect(await inflight).toEqual({ status: 200, text: 'finished' })
    expect(await s.exited).toBe(1)
    expect(s.output()).toMatch(/a fault no extension or filter can be blamed for/)
    expect(s.output()).toContain('a fault in no extension')
  })
})
