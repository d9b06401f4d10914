import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

// `resident serve` as an operator runs it (dist/ is built by `npm test` before vitest runs).
const bin = path.resolve(import.meta.dirname, '../bin/resident.js')
const filter = (extra = '') => `import { Filter } from 'resident-host'
export default class F extends Filter { ${extra} onSendResponse() {} }`

let dir: string | undefined
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined })

function project(filters: Record<string, string>, config: unknown): string {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-cli-'))
  mkdirSync(path.join(dir, 'extensions'))
  mkdirSync(path.join(dir, 'filters'))
  for (const [f, c] of Object.entries(filters)) writeFileSync(path.join(dir, 'filters', f), c)
  writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify(config))
  return dir
}

function run(cwd: string, untilLine: RegExp | null): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { cwd, env: { ...process.env, NODE_ENV: 'production' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      if (untilLine && untilLine.test(stdout)) child.kill('SIGTERM')
    })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('resident serve with filters', () => {
  it('prints the order in force at start-up', async () => {
    const cwd = project({ 'a.ts': filter(), 'b.ts': filter(), 'c.ts': filter("static priority = 'high';") }, { filters: { order: ['b', 'a'] } })
    const { stdout } = await run(cwd, /Resident listening/)
    const banner = stdout.split('\n').map((l) => { try { return JSON.parse(l) as { msg?: string; filters?: string[] } } catch { return {} } })
      .find((l) => l.msg?.startsWith('Resident listening'))
    expect(banner?.filters).toEqual(['1. c (high) onSendResponse', '2. b (medium) onSendResponse', '3. a (medium) onSendResponse'])
    expect(banner?.msg).toContain('in the order they run')
  })

  it('does not start when a filter fails to load, and says why', async () => {
    const cwd = project({ 'broken.ts': filter('init() { throw new Error("missing secret") }') }, {})
    const { code, stderr } = await run(cwd, null)
    expect(code).toBe(1)
    expect(stderr).toMatch(/filter "broken" failed to load: .*missing secret/)
  })
})
