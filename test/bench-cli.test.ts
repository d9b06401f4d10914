// `resident bench` through the real binary: a tiny run gives a table, a JSON document and an HTML
// report; bad input is a usage error (exit 2). The report is checked in Chromium by bench-report.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'resident-bench-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const TINY = ['--duration', '500ms', '--warmup', '0', '--rounds', '1', '--connections', '4']

// Every case starts real processes (a server per mode and round): slow on a loaded machine.
describe('resident bench', { timeout: 180_000 }, () => {
  it('prints a table with each target, and the claims with what this run measured', async () => {
    const r = await runCli(['bench', ...TINY, '--modes', 'inprocess', '--baselines', 'node:http'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    // Run from the checkout, it serves with the shipped resident.config.json, as npm start does.
    expect(lines[0]).toBe('the modes serve with resident.config.json (its filters and settings)')
    expect(lines[2]).toMatch(/^target\s+req\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+errors\s+CPU µs\/req\s+peak RSS\s+cold ms\s+vs in-process\s+paired$/)
    expect(lines.find((l) => l.startsWith('inprocess'))).toMatch(/^inprocess\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0\s+[\d.]+\s+\d+ MB\s+[\d.]+\s+1\.000×/)
    expect(lines.find((l) => l.startsWith('node:http'))).toMatch(/^node:http\s+\d+/)
    expect(r.stdout).toMatch(/FastCGI is at least 5× faster than CGI: not measured/)
  })

  it('--json prints one document with every raw round; --html writes a report', async () => {
    const html = path.join(dir, 'report.html')
    const r = await runCli(['bench', ...TINY, '--rounds', '2', '--modes', 'inprocess', '--baselines', 'fastify', '--json', '--html', html])
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(Object.keys(doc)).toEqual(['date', 'machine', 'settings', 'modes', 'baselines', 'claims'])
    expect(doc.machine).toMatchObject({ cpus: expect.any(Number), node: process.version })
    expect(doc.settings).toMatchObject({ extension: 'hello', command: 'greet', params: { name: 'bench' }, rounds: 2, connections: 4, modes: ['inprocess'] })
    expect(doc.settings.config).toBe(path.resolve('resident.config.json'))
    const [mode] = doc.modes
    expect(mode).toMatchObject({ name: 'inprocess', errors: 0, ratioToInprocess: 1 })
    for (const k of ['reqPerSec', 'p50', 'p99', 'cpuPerRequestUs', 'peakRssBytes', 'coldStartMs']) expect(mode[k]).toBeGreaterThan(0)
    expect(mode.rounds.map((x: { round: number }) => x.round)).toEqual([1, 2])
    expect(doc.baselines.map((b: { name: string }) => b.name)).toEqual(['fastify'])
    expect(doc.claims.map((c: { claim: string }) => c.claim)).toContain('in-process beats both')
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/)
  })

  it('benches the command and parameters asked for, and answers that are not 2xx are reported, not averaged', async () => {
    const r = await runCli(['bench', ...TINY, '--modes', 'inprocess', '--baselines', 'none', '--extension', 'calc', '--command', 'div', '--params', 'a=1', '--params', 'b=0', '--json'])
    expect(r.code).toBe(0)
    const [mode] = JSON.parse(r.stdout).modes
    expect(mode.non2xx).toBeGreaterThan(0)
    expect(mode.dirtyRounds).toEqual([1])
    expect(mode.reqPerSec).toBeNull()
  })

  it('--config: every mode serves with that file (its extension settings, filters, limits); --config none serves bare', async () => {
    const project = mkdtempSync(path.join(dir, 'project-'))
    mkdirSync(path.join(project, 'ext'))
    // The command fails unless its configuration reached it.
    writeFileSync(path.join(project, 'ext', 'echo.ts'), `import { Extension, HttpError } from 'resident-host'
export default class Echo extends Extension {
  say() {
    if (this.host.config.word === undefined) throw new HttpError(409, 'no configuration')
    return { word: this.host.config.word }
  }
}`)
    const config = path.join(project, 'bench.config.json')
    writeFileSync(config, JSON.stringify({ extensionsDir: './ext', extensions: { echo: { config: { word: 'configured' } } } }))
    const args = ['bench', ...TINY, '--modes', 'inprocess,worker', '--baselines', 'none', '--extension', 'echo', '--command', 'say', '--json']
    const withConfig = await runCli([...args, '--config', config], { cwd: dir })
    expect(withConfig.code, withConfig.stderr).toBe(0)
    const doc = JSON.parse(withConfig.stdout)
    expect(doc.settings.config).toBe(config)
    for (const mode of doc.modes) expect(mode, mode.name).toMatchObject({ errors: 0, non2xx: 0, dirtyRounds: [] })
    const bare = await runCli([...args, '--config', 'none', '--extensions', path.join(project, 'ext'), '--modes', 'inprocess'], { cwd: dir })
    expect(bare.code, bare.stderr).toBe(0)
    const bareDoc = JSON.parse(bare.stdout)
    expect(bareDoc.settings.config).toBeNull()
    expect(bareDoc.modes[0].non2xx).toBeGreaterThan(0)
  })

  it('a bad --modes value, an unknown extension or baseline, or a bad number is a usage error with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--modes', 'inprocess,fastest'], /unknown mode "fastest"/],
      [['--extension', 'nope'], /no extension "nope"/],
      [['--baselines', 'apache'], /unknown baseline "apache"/],
      [['--duration', '0'], /--duration must be seconds .* above 0/],
      [['--duration', 'soon'], /--duration must be seconds/],
      [['--connections', '2.5'], /--connections must be a positive integer/],
      [['--params', 'novalue'], /--params takes k=v/],
      [['--frobnicate'], /Unknown option/],
      [['--config', 'no-such.json'], /--config: no file/],
      [['--config', 'package.json'], /invalid configuration/],
    ]
    const runs = await Promise.all(cases.map(([args]) => runCli(['bench', ...args])))
    cases.forEach(([args, message], i) => {
      expect(runs[i]!.code, args.join(' ')).toBe(2)
      expect(runs[i]!.stderr, args.join(' ')).toMatch(message)
    })
  })
})
