import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN } from './helpers/cli.ts'
import { waitFor } from './helpers/poll.ts'

// An author's project, as a new author makes it: `resident new` in a folder outside the checkout,
// the SDK installed from an `npm pack` tarball of this checkout (as before it is published), then
// the project's own type check and tests, its `npm run dev`, and the testing kit under node:test.

const root = path.resolve(import.meta.dirname, '..')
const env = { ...process.env, NODE_ENV: '', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }

function run(cmd: string, args: string[], cwd: string, timeout = 240_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout })
}
const resident = (args: string[], cwd: string) => run(process.execPath, [BIN, ...args], cwd)
const show = (r: SpawnSyncReturns<string>) => `exit ${r.status}\n${r.stdout}\n${r.stderr}`

describe('an author project made by resident new, outside the checkout', () => {
  let work: string
  let proj: string
  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'resident-author-'))
    // dist/ is built by `npm test` before the tests run: pack it as it is.
    const pack = run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], root)
    expect(pack.status, show(pack)).toBe(0)
    const tarball = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!)
    proj = path.join(work, 'my-extensions')
    const made = resident(['new', proj, '--sdk', `file:${tarball}`], work)
    expect(made.status, show(made)).toBe(0)
    const install = run('npm', ['install', '--prefer-offline'], proj)
    expect(install.status, show(install)).toBe(0)
  }, 300_000)
  afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }) })

  it('makes the project files, and never overwrites (exit 2, nothing written)', () => {
    expect(readdirSync(proj).sort()).toEqual(expect.arrayContaining(['.gitignore', 'README.md', 'extensions', 'package.json', 'test', 'tsconfig.json']))
    const again = resident(['new', proj], work)
    expect(again.status).toBe(2)
    expect(again.stderr).toContain('is not empty: will not overwrite')
    const ext = resident(['new', 'extension', 'greeter'], proj)
    expect(ext.status, show(ext)).toBe(0)
    const filter = resident(['new', 'filter', 'stamp'], proj)
    expect(filter.status, show(filter)).toBe(0)
    const twice = resident(['new', 'extension', 'greeter'], proj)
    expect(twice.status).toBe(2)
    expect(twice.stderr).toContain('will not overwrite')
    expect(twice.stderr).toContain(path.join('extensions', 'greeter.ts'))
    expect(resident(['new', 'extension', 'Bad_Name'], proj).status).toBe(2)
  })

  it('npm test passes there: the type check against the installed SDK and the tests with the testing kit', () => {
    const t = run('npm', ['test'], proj)
    expect(t.status, show(t)).toBe(0)
    expect(t.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests\s+\d+ passed/)
  }, 240_000)

  it('a type error in an extension fails the type check', () => {
    writeFileSync(path.join(proj, 'extensions/typo.ts'), `import { Extension } from 'resident-host'
export default class Typo extends Extension { a() { return this.host.nosuch } }
`)
    try {
      const t = run('npx', ['tsc', '--noEmit'], proj)
      expect(t.status).not.toBe(0)
      expect(t.stdout).toContain("Property 'nosuch' does not exist on type 'ExtensionHost'")
    } finally { rmSync(path.join(proj, 'extensions/typo.ts')) }
  }, 120_000)

  it('the testing kit works under node:test as well', () => {
    writeFileSync(path.join(proj, 'test/hello.node-test.mjs'), `import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createTestHost } from 'resident-host/testing'
test('hello under node:test', async () => {
  const host = await createTestHost({ extensions: 'extensions' })
  try {
    const r = await host.inject('/hello/greet?name=node')
    assert.equal(r.statusCode, 200)
    assert.deepEqual(r.json(), { hello: 'node' })
  } finally { await host.close() }
})
`)
    const t = run(process.execPath, ['--test', 'test/hello.node-test.mjs'], proj)
    expect(t.status, show(t)).toBe(0)
    expect(t.stdout).toMatch(/# pass 1/)
  }, 120_000)

  it('npm run dev serves the project', async () => {
    const child = spawn('npm', ['run', 'dev'], { cwd: proj, env: { ...env, PORT: '0' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    try {
      const url = await waitFor(() => /listening on (http:\/\/[\w.:[\]]+)/.exec(out)?.[1], `resident dev listening:\n${out}`, 60_000)
      const r = await fetch(`${url}/hello/greet?name=dev`)
      expect(await r.json()).toEqual({ hello: 'dev' })
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM')
    }
  }, 90_000)
})
