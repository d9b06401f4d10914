import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, spawnInProject, stopProjectProcesses, type ProjectProcess } from './helpers/cli.ts'
import { until, versioned } from './helpers/watch.ts'


type Proc = ProjectProcess
const procs: Proc[] = []

function start(command: 'serve' | 'dev', files: Record<string, string>): Proc {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-cli-'))
  mkdirSync(path.join(dir, 'extensions'))
  mkdirSync(path.join(dir, 'filters'))
  for (const [f, c] of Object.entries(files)) writeFileSync(path.join(dir, 'extensions', f), c)
  return spawnInProject(procs, dir, [command, '-p', '0', '-e', 'extensions'])
}

afterEach(() => stopProjectProcesses(procs))

const get = async (url: string) => {
  const r = await fetch(url)
  return r.status === 200 ? ((await r.json()) as { v: unknown }).v : r.status
}

const TAGGER = `import { Filter } from 'resident-host'
export default class Tag extends Filter { onSendResponse(req, res) { res.setHeader('x-tag', 'late') } }
`
const tagOf = async (url: string) => (await fetch(url)).headers.get('x-tag')

describe('resident serve: SIGHUP', () => {
  it('reloads every loaded extension gracefully and keeps serving', async () => {
    const p = start('serve', { 'a.ts': versioned('a1'), 'b.ts': versioned('b1') })
    const base = await until(() => p.url(), 'listening')
    expect(await get(`${base}/a/v`)).toBe('a1')
    expect(await get(`${base}/b/v`)).toBe('b1')
    writeFileSync(path.join(p.dir, 'extensions/a.ts'), versioned('a2'))
    writeFileSync(path.join(p.dir, 'extensions/b.ts'), 'export default class {') // broken: b1 keeps serving
    // serve does not watch: nothing changes until the signal.
    await new Promise((r) => setTimeout(r, 300))
    expect(await get(`${base}/a/v`)).toBe('a1')
    p.child.kill('SIGHUP')
    await until(async () => (await get(`${base}/a/v`)) === 'a2', 'a reloaded by SIGHUP')
    expect(await get(`${base}/b/v`)).toBe('b1')
    await until(() => /reloaded 1 extension\(s\) in \d+ ms; failed \(old generation kept\): b/.test(p.out.join('')), 'summary logged')
    expect(p.child.exitCode).toBeNull()
  }, 60_000)

  it('started without filters, says a first filter needs a restart, and keeps serving without it', async () => {
    const p = start('serve', { 'a.ts': versioned('a1') })
    const base = await until(() => p.url(), 'listening')
    await until(() => /none \(adding one needs a restart\)/.test(p.out.join('')), 'the banner says so')
    writeFileSync(path.join(p.dir, 'filters/tag.ts'), TAGGER)
    p.child.kill('SIGHUP')
    await until(() => /RES_ERR_FILTERS_NEED_RESTART|restart it to load filters/.test(p.out.join('')), 'refusal logged')
    expect(await get(`${base}/a/v`)).toBe('a1')
    expect(await tagOf(`${base}/a/v`)).toBeNull()
  }, 60_000)
})

describe('resident dev', () => {
  it('rejects a bad --quiet with exit code 2', async () => {
    const r = await runCli(['dev', '--quiet', 'soon'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--quiet must be a duration/)
  })

  it('serves, watches, and logs each reload with its duration', async () => {
    const p = start('dev', { 'a.ts': versioned(1) })
    const base = await until(() => p.url(), 'listening')
    await until(() => /watching for changes/.test(p.out.join('')), 'watcher started')
    expect(await get(`${base}/a/v`)).toBe(1)
    writeFileSync(path.join(p.dir, 'extensions/a.ts'), versioned(2))
    await until(async () => (await get(`${base}/a/v`)) === 2, 'new code served')
    await until(() => /reloaded a in \d+ ms \(generation 2\) after a change to a\.ts/.test(p.out.join('')), 'reload logged with its duration')
  }, 60_000)

  it('takes a first filter saved while it runs', async () => {
    const p = start('dev', { 'a.ts': versioned(1) })
    const base = await until(() => p.url(), 'listening')
    await until(() => /watching for changes/.test(p.out.join('')), 'watcher started')
    expect(await tagOf(`${base}/a/v`)).toBeNull()
    writeFileSync(path.join(p.dir, 'filters/tag.ts'), TAGGER)
    await until(async () => (await tagOf(`${base}/a/v`)) === 'late', 'the new filter runs')
  }, 60_000)

  it('applies a config file created after it started, and falls back to defaults when it is deleted', async () => {
    const ext = `import { Extension } from 'resident-host'
export default class G extends Extension { hi() { return { v: this.host.config.greeting ?? null } } }
`
    const p = start('dev', { 'g.ts': ext })
    const base = await until(() => p.url(), 'listening')
    await until(() => /watching for changes/.test(p.out.join('')), 'watcher started')
    expect(await get(`${base}/g/hi`)).toBeNull()
    const file = path.join(p.dir, 'resident.config.json')
    writeFileSync(file, JSON.stringify({ extensions: { g: { config: { greeting: 'hello' } } } }))
    await until(async () => (await get(`${base}/g/hi`)) === 'hello', 'the new config file applied')
    rmSync(file)
    await until(async () => (await get(`${base}/g/hi`)) === null, 'back to the defaults')
  }, 60_000)
})
