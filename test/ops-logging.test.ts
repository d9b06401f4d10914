import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { waitFor } from './helpers/poll.ts'

const repo = path.resolve(import.meta.dirname, '..')
let dir: string | undefined
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined })

/** A project with the example hello extension and access-log filter, logging to logs/resident.log. */
function project(log: Record<string, unknown>): string {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-log-'))
  mkdirSync(path.join(dir, 'extensions'))
  mkdirSync(path.join(dir, 'filters'))
  copyFileSync(path.join(repo, 'extensions/hello.ts'), path.join(dir, 'extensions/hello.ts'))
  copyFileSync(path.join(repo, 'filters/access-log.ts'), path.join(dir, 'filters/access-log.ts'))
  writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify({ log: { file: 'logs/resident.log', ...log } }))
  return dir
}

const accessLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { access?: { url: string } }).filter((l) => l.access)

describe('buffered access log', () => {
  it('writes every line by the time the server has exited on SIGTERM', async () => {
    const cwd = project({ buffer: '1MB', flushInterval: '1h' })
    const { child, url, exited } = await startCli(['serve', '--port', '0'], { cwd })
    const n = 300
    for (let i = 0; i < n; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => fetch(`${url}/hello/greet?name=n${i + j}`).then((r) => r.text())))
    }
    const file = path.join(cwd, 'logs/resident.log')
    // 1 MB of buffer and an hour between flushes: nothing of the traffic is on disk yet.
    expect(accessLines(file).length).toBe(0)
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    const urls = accessLines(file).map((l) => l.access!.url)
    expect(urls.length).toBe(n)
    expect(new Set(urls).size).toBe(n)
  })

  it('flushes on the timer', async () => {
    const cwd = project({ buffer: '1MB', flushInterval: '100ms' })
    const { child, url, exited } = await startCli(['serve', '--port', '0'], { cwd })
    await fetch(`${url}/hello/greet?name=timer`).then((r) => r.text())
    await waitFor(() => accessLines(path.join(cwd, 'logs/resident.log')).length === 1, 'the timer to flush the line')
    child.kill('SIGTERM')
    await exited
  })

  it('SIGUSR1 reopens the file after logrotate moved it', async () => {
    const cwd = project({ buffer: 0 })
    const { child, url, exited } = await startCli(['serve', '--port', '0'], { cwd })
    const file = path.join(cwd, 'logs/resident.log')
    await fetch(`${url}/hello/greet?name=before`).then((r) => r.text())
    await waitFor(() => accessLines(file).length === 1, 'the first line')
    renameSync(file, `${file}.1`)
    // Until the reopen, lines go to the moved file (the descriptor follows it).
    await fetch(`${url}/hello/greet?name=moved`).then((r) => r.text())
    await waitFor(() => accessLines(`${file}.1`).length === 2, 'the line written to the moved file')
    child.kill('SIGUSR1')
    await waitFor(() => { try { return readFileSync(file, 'utf8').includes('log file reopened') } catch { return false } }, 'the reopened file')
    await fetch(`${url}/hello/greet?name=after`).then((r) => r.text())
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(accessLines(`${file}.1`).map((l) => l.access!.url)).toEqual(['/hello/greet?name=before', '/hello/greet?name=moved'])
    expect(accessLines(file).map((l) => l.access!.url)).toEqual(['/hello/greet?name=after'])
  })
})

describe('the buffered destination on other exits', () => {
  it('writes what is buffered when the process exits by process.exit(), in order, whether or not a write is in flight', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-log-exit-'))
    const file = path.join(dir, 'out.log')
    // 20,000 lines through a 16 KB buffer: writes are in flight while lines keep coming, and the
    // process exits with some still buffered. Every line must be in the file, in order.
    const script = `import { createLogger } from ${JSON.stringify(path.join(repo, 'dist/server/logger.js'))}
import { existsSync } from 'node:fs'
const log = createLogger({ logLevel: 'info', log: { file: ${JSON.stringify(file)}, buffer: 16384, flushInterval: 3600000 } }, false)
// The file opens asynchronously (a server logs its banner long before it can exit).
while (!existsSync(${JSON.stringify(file)})) await new Promise((r) => setTimeout(r, 5))
await new Promise((r) => setTimeout(r, 20))
for (let i = 0; i < 20000; i++) log.info({ i }, 'line')
process.exit(0)
`
    writeFileSync(path.join(dir, 'exit.mjs'), script)
    const { execFileSync } = await import('node:child_process')
    execFileSync(process.execPath, [path.join(dir, 'exit.mjs')])
    const seen = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i)
    expect(seen.length).toBe(20000)
    expect(seen).toEqual(Array.from({ length: 20000 }, (_, i) => i))
  })
})

describe('flushLogs', () => {
  it('resolves only once every buffered line is in the file', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-log-flush-'))
    const file = path.join(dir, 'out.log')
    const { createLogger, flushLogs } = await import('../src/server/logger.ts')
    const log = createLogger({ logLevel: 'info', log: { file, buffer: 16384, flushInterval: 3_600_000 } }, false)
    await waitFor(() => { try { readFileSync(file); return true } catch { return false } }, 'the log file to open')
    // 4 MB of lines: many 16 KB writes, most still to go when flushLogs is called.
    const pad = 'x'.repeat(180)
    for (let i = 0; i < 20_000; i++) log.info({ i, pad }, 'line')
    await flushLogs()
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean)
    expect(lines.length).toBe(20_000)
    expect((JSON.parse(lines.at(-1)!) as { i: number }).i).toBe(19_999)
  })
})
