import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, startCli } from './helpers/cli.ts'

function project(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-cli-'))
  mkdirSync(path.join(dir, 'extensions'))
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    writeFileSync(path.join(dir, f), c)
  }
  return dir
}

describe('resident CLI', () => {
  it('--help prints usage and exits 0', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('resident serve')
    const s = await runCli(['serve', '--help'])
    expect(s.code).toBe(0)
    expect(s.stdout).toContain('--extensions')
  })

  it.each([
    [['serve', '--bogus'], /Unknown option '--bogus'/],
    [['serve', '--port', 'abc'], /--port must be an integer/],
    [['serve', '--port', '70000'], /--port must be an integer/],
    [['serve', '--config', 'nope.json'], /config file not found/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['serve', 'stray'], /positional argument/],
  ])('%j → a clear message and exit code 2', async (args, message) => {
    const r = await runCli(args as string[], { cwd: project() })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  it('rejects an invalid config file with every problem listed, exit code 2', async () => {
    const dir = project({ 'resident.config.json': JSON.stringify({ port: 'x', colour: 'blue', bodyLimit: 'lots' }) })
    const r = await runCli(['serve'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('"port" must be an integer')
    expect(r.stderr).toContain('unknown setting "colour"')
    expect(r.stderr).toContain('"bodyLimit" must be a size')
  })

  it('serves with PORT from the environment and the folders from flags, and lists what it serves', async () => {
    const dir = project({
      'exts/calc.ts': `import { Extension } from 'resident-host'
export default class Calc extends Extension { add() { return { sum: 3 } } }`,
    })
    const { child, url, output, exited } = await startCli(['serve', '--extensions', 'exts'], { cwd: dir, env: { PORT: '0', HOST: '127.0.0.1' } })
    try {
      expect(output()).toContain(`${url}/calc/`)
      const r = await fetch(`${url}/calc/add`)
      expect(await r.json()).toEqual({ sum: 3 })
    } finally {
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    }
  })

  it('on SIGTERM finishes the request in flight, disposes every extension, and exits 0', async () => {
    const dir = project({
      'extensions/slow.ts': `import { Extension } from 'resident-host'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
export default class Slow extends Extension {
  async index() { await sleep(700); return { finished: true } }
  dispose(reason) { writeFileSync(${JSON.stringify(path.join('DIR', 'disposed.txt'))}.replace('DIR', process.cwd()), reason) }
}`,
    })
    const { child, url, exited } = await startCli(['serve', '--port', '0'], { cwd: dir })
    const pending = fetch(`${url}/slow/`)
    await new Promise((r) => setTimeout(r, 300))
    child.kill('SIGTERM')
    const r = await pending
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ finished: true })
    expect(await exited).toBe(0)
    expect(existsSync(path.join(dir, 'disposed.txt'))).toBe(true)
    expect(readFileSync(path.join(dir, 'disposed.txt'), 'utf8')).toBe('shutdown')
  })
})
