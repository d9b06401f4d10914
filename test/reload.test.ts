import { renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startWatchedServer, until, versioned, type WatchedServer } from './helpers/watch.ts'

let t: WatchedServer | null = null
afterEach(async () => { await t?.close(); t = null })

const v = async (name = 'ext') => {
  const r = await t!.inject(`/${name}/v`)
  return r.statusCode === 200 ? (r.json() as { v: unknown }).v : r.statusCode
}
const generation = (name = 'ext') => t!.server.registry.slots.get(name)?.current?.id ?? null
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('hot reload (resident dev watcher)', () => {
  it('serves the new code after the extension file is saved', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v()).toBe(1)
    t.writeExtension('ext.ts', versioned(2))
    await until(async () => (await v()) === 2, 'version 2')
    expect(t.logs.some((l) => /reloaded ext in \d+ ms \(generation 2\) after a change to ext\.ts/.test(l.msg))).toBe(true)
  })

  it('reloads when a file the extension imports changes, and re-derives the watch set', async () => {
    t = await startWatchedServer({
      extensions: {
        'ext.ts': `import { Extension } from 'resident-host'\nimport { value } from './lib/dep.ts'\nexport default class E extends Extension { v() { return { v: value } } }\n`,
        'lib/dep.ts': 'export const value = 1\n',
        'lib/other.ts': 'export const value = 100\n',
      },
    })
    expect(await v()).toBe(1)
    const dep = path.join(t.extensionsDir, 'lib/dep.ts')
    const other = path.join(t.extensionsDir, 'lib/other.ts')
    expect(t.watcher.watchedFiles('extension', 'ext').map((f) => path.basename(f)).sort()).toEqual(['dep.ts', 'ext.ts'])
    t.writeExtension('lib/dep.ts', 'export const value = 2\n')
    await until(async () => (await v()) === 2, 'dep change served').catch((e) => { throw new Error(`${e.message}\n${t!.logs.map((l) => l.msg).join('\n')}`) })
    // Switch the import: the old file is no longer watched, the new one is.
    t.writeExtension('ext.ts', `import { Extension } from 'resident-host'\nimport { value } from './lib/other.ts'\nexport default class E extends Extension { v() { return { v: value } } }\n`)
    await until(async () => (await v()) === 100, 'import switched')
    await until(() => t!.watcher.watchedFiles('extension', 'ext').includes(other), 'other.ts watched')
    expect(t.watcher.watchedFiles('extension', 'ext')).not.toContain(dep)
    const gen = generation()
    t.writeExtension('lib/dep.ts', 'export const value = 3\n')
    await sleep(300)
    await t.watcher.idle()
    expect(generation()).toBe(gen)
    t.writeExtension('lib/other.ts', 'export const value = 101\n')
    await until(async () => (await v()) === 101, 'other.ts change served')
  })

  it('serves a new extension file without a restart (loaded as soon as it appears)', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v('fresh')).toBe(404)
    t.writeExtension('fresh.ts', versioned('fresh'))
    await until(() => generation('fresh') !== null, 'fresh preloaded')
    expect(await v('fresh')).toBe('fresh')
    // …and it is watched from then on.
    t.writeExtension('fresh.ts', versioned('fresh 2'))
    await until(async () => (await v('fresh')) === 'fresh 2', 'fresh reloaded')
  })

  it('a new extension that fails to load is watched, and loads once fixed', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    t.writeExtension('fresh.ts', 'export default class {')
    await until(() => t!.logs.some((l) => /new extension fresh failed to load/.test(l.msg)), 'failure logged')
    t.writeExtension('fresh.ts', versioned('fixed'))
    await until(() => generation('fresh') !== null, 'fresh loaded after the fix')
    expect(await v('fresh')).toBe('fixed')
  })

  it('a deleted extension answers 404 once its in-flight requests finish', async () => {
    t = await startWatchedServer({
      extensions: { 'ext.ts': versioned(1, `  async slow() { await new Promise((r) => setTimeout(r, 800)); return { done: true } }`) },
    })
    expect(await v()).toBe(1)
    const slow = t.inject('/ext/slow')
    await until(() => (t!.server.registry.slots.get('ext')?.inFlight ?? 0) > 0, 'slow request in flight')
    rmSync(path.join(t.extensionsDir, 'ext.ts'))
    await until(() => generation() === null, 'unloaded')
    expect(await v()).toBe(404)
    const r = await slow
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ done: true })
    await until(() => t!.logs.some((l) => /unloaded ext \(generation 1, removed\)/.test(l.msg)), 'disposed after drain')
  })

  it('a syntax error keeps the old generation serving, reports file:line:col and a code frame, and the fix recovers', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v()).toBe(1)
    t.writeExtension('ext.ts', `import { Extension } from 'resident-host'\nexport default class V extends Extension {\n  v() { return { v: 2 ] }\n}\n`)
    const failure = await until(() => t!.logs.find((l) => /failed to load/.test(l.msg)), 'build failure logged')
    expect(failure.msg).toMatch(/ext\.ts:\d+:\d+: /)
    expect(failure.msg).toMatch(/\n {4}.*\n {4} *\^/)
    expect(await v()).toBe(1)
    const status = (await t.inject('/_resident/status')).json() as { extensions: { name: string; lastError: { message: string } | null; generation: number }[] }
    const ext = status.extensions.find((e) => e.name === 'ext')!
    expect(ext.generation).toBe(1)
    expect(ext.lastError?.message).toMatch(/ext\.ts:\d+:\d+/)
    // A throwing init() is kept out too.
    t.writeExtension('ext.ts', versioned(3, '  init() { throw new Error("init refused") }'))
    await until(() => t!.logs.some((l) => /init refused/.test(l.msg)), 'init failure logged')
    expect(await v()).toBe(1)
    t.writeExtension('ext.ts', versioned(4))
    await until(async () => (await v()) === 4, 'recovered')
    const after = (await t.inject('/_resident/status')).json() as typeof status
    expect(after.extensions.find((e) => e.name === 'ext')!.lastError).toBeNull()
  })

  it('an error in a newly imported file is watched too, so fixing that file recovers', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v()).toBe(1)
    t.writeExtension('helper.ts', 'export const value = (\n')
    t.writeExtension('ext.ts', `import { Extension } from 'resident-host'\nimport { value } from './helper.ts'\nexport default class V extends Extension { v() { return { v: value } } }\n`)
    await until(() => t!.logs.some((l) => /helper\.ts:\d+:\d+/.test(l.msg)), 'error in helper.ts reported')
    expect(await v()).toBe(1)
    await until(() => t!.watcher.watchedFiles('extension', 'ext').some((f) => f.endsWith('helper.ts')), 'helper.ts watched')
    t.writeExtension('helper.ts', 'export const value = 2\n')
    await until(async () => (await v()) === 2, 'recovered by fixing helper.ts')
  })

  it('a file written slowly in chunks is built once, never half-written', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v()).toBe(1)
    const file = path.join(t.extensionsDir, 'ext.ts')
    const next = versioned(2, '  // '.padEnd(400, 'x'))
    const seen = new Set<unknown>()
    let polling = true
    const poller = (async () => { while (polling) { seen.add(await v()); await sleep(5) } })()
    const step = Math.ceil(next.length / 6)
    for (let i = 0; i < 6; i++) {
      writeFileSync(file, next.slice(0, step * (i + 1)))
      await sleep(15)
    }
    await until(async () => (await v()) === 2, 'version 2')
    polling = false
    await poller
    expect([...seen].every((x) => x === 1 || x === 2)).toBe(true)
    expect(t.logs.filter((l) => /failed to load/.test(l.msg))).toEqual([])
    expect(generation()).toBe(2)
  })

  it('a burst of saves builds once and the newest wins', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(0) } })
    expect(await v()).toBe(0)
    // Written back to back (nothing else runs in between), as a formatter-on-save or a git checkout does.
    for (let i = 1; i <= 10; i++) t.writeExtension('ext.ts', versioned(i))
    await until(async () => (await v()) === 10, 'version 10')
    await t.watcher.idle()
    expect(generation()).toBe(2)
  })

  it('saves during a build are not lost: builds never overlap and the newest content ends up served', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(0) } }, { quietMs: 5 })
    expect(await v()).toBe(0)
    for (let i = 1; i <= 30; i++) { t.writeExtension('ext.ts', versioned(i)); await sleep(i % 3 === 0 ? 25 : 1) }
    await until(async () => (await v()) === 30, 'version 30')
    await t.watcher.idle()
    expect(await v()).toBe(30)
    const gens = t.logs.filter((l) => /^loaded ext \(generation/.test(l.msg)).map((l) => l.generation as number)
    expect(gens).toEqual([...gens].sort((a, b) => a - b))
  })

  it('handles editors\' atomic saves (temp file + rename) and ignores their temp files', async () => {
    t = await startWatchedServer({ extensions: { 'ext.ts': versioned(1) } })
    expect(await v()).toBe(1)
    const tmp = path.join(t.extensionsDir, '.ext.ts.tmp')
    writeFileSync(tmp, versioned(2))
    renameSync(tmp, path.join(t.extensionsDir, 'ext.ts'))
    await until(async () => (await v()) === 2, 'renamed-over save served')
    writeFileSync(path.join(t.extensionsDir, 'ext.ts~'), 'garbage')
    writeFileSync(path.join(t.extensionsDir, '.ext.ts.swp'), 'garbage')
    // And a second atomic save still reaches the (new) file.
    writeFileSync(tmp, versioned(3))
    renameSync(tmp, path.join(t.extensionsDir, 'ext.ts'))
    await until(async () => (await v()) === 3, 'second renamed-over save served')
    await t.watcher.idle()
    expect(t.logs.filter((l) => /failed to load/.test(l.msg))).toEqual([])
  })

  it('carries state over when the extension opts in with exportState()/importState()', async () => {
    const counter = (step: number) => `import { Extension } from 'resident-host'
export default class C extends Extension {
  count = 0
  bump() { this.count += ${step}; return { count: this.count } }
  exportState() { return { count: this.count } }
  importState(s) { this.count = s.count }
}
`
    t = await startWatchedServer({ extensions: { 'c.ts': counter(1), 'fresh.ts': versioned(1, '  n = 0\n  bump() { return { n: ++this.n } }') } })
    for (let i = 0; i < 3; i++) await t.inject('/c/bump')
    await t.inject('/fresh/bump')
    t.writeExtension('c.ts', counter(10))
    t.writeExtension('fresh.ts', versioned(2, '  n = 0\n  bump() { return { n: ++this.n } }'))
    await until(async () => (await v('fresh')) === 2, 'fresh reloaded')
    await until(() => generation('c') === 2, 'c reloaded')
    expect((await t.inject('/c/bump')).json()).toEqual({ count: 13 })
    // Without the hooks, state starts fresh in the new generation.
    expect((await t.inject('/fresh/bump')).json()).toEqual({ n: 1 })
  })
})
