import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { allStats, cpuMs, procAvailable, readStat, rssBytes } from '../src/modes/proc.ts'

// Linux's /proc, read for real: this process and one that no longer exists.
describe.skipIf(!procAvailable())('/proc readings', () => {
  it('read this process: its parent, its CPU time growing with work, its resident memory', () => {
    const s = readStat(process.pid)!
    expect(s.ppid).toBe(process.ppid)
    const before = cpuMs(process.pid)
    const until = Date.now() + 150
    let x = 0
    while (Date.now() < until) x += Math.sqrt(x + 1)
    expect(x).toBeGreaterThan(0)
    expect(cpuMs(process.pid)).toBeGreaterThan(before)
    const rss = rssBytes(process.pid)
    const own = process.memoryUsage().rss
    expect(rss).toBeGreaterThan(own / 2)
    expect(rss).toBeLessThan(own * 2)
  })

  it('a process that has exited reads as nothing', () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!
    expect(readStat(gone)).toBeUndefined()
    expect(cpuMs(gone)).toBe(0)
    expect(rssBytes(gone)).toBe(0)
  })

  it('lists every process, this one among them', () => {
    expect(allStats().some((s) => s.pid === process.pid)).toBe(true)
  })
})
