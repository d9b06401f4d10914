import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { esmProject } from './helpers/esm-project.ts'
import { waitFor } from './helpers/poll.ts'

// The extension of esm-extensions.test.ts (static and dynamic imports of builtins, CommonJS and
// ESM-only packages, its own files and JSON, top-level await, import.meta), reloaded 1000 times by
// the real binary: not inside the test runner, whose own module loader could keep (or hide) what
// Resident's does. Every old generation must be proved collected by Resident itself (its status
// counts them), and the heap after a full GC must not grow. A heap snapshot is the full GC the
// binary can be asked for from outside (--heapsnapshot-signal); the status read right after it
// gives the heap it left.

interface Host { memory: { heapUsed: number }; collection: { watched: number; collected: number; retained: number; awaitingVerdict: number } }

describe('1000 reloads of an extension using every ES module feature (real binary)', () => {
  let dir: string
  let stop: (() => void) | undefined
  afterAll(() => { stop?.(); if (dir) rmSync(dir, { recursive: true, force: true }) })

  it('prove every old generation collected, and leave the heap after a full GC where it was', async () => {
    const project = esmProject()
    dir = project.dir
    const snapshots = path.join(dir, 'snapshots')
    mkdirSync(snapshots)
    const s = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters'], {
      cwd: dir,
      env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}` },
    })
    stop = () => s.child.kill('SIGTERM')
    const entry = path.join(dir, 'extensions/all/index.ts')
    const host = async () => ((await (await fetch(`${s.url}/_resident/status`)).json()) as { host: Host }).host
    // Each generation holds 256 KiB of its own: 1000 kept would be 250 MiB.
    const ballast = (i: number) => `\nconst ballast = new Array(32 * 1024).fill(${i})\nexport const generation = () => ballast.length + ${i}\n`
    const reload = async (i: number) => {
      writeFileSync(entry, project.files['extensions/all/index.ts'] + ballast(i))
      const r = await fetch(`${s.url}/_resident/extensions/all/reload`, { method: 'POST', headers: { 'x-resident-admin': '1' } })
      expect(r.status, await r.text()).toBe(200)
      const answer = await fetch(`${s.url}/all/everything`)
      expect(answer.status, await answer.text()).toBe(200)
    }
    const allCollected = (n: number) => waitFor(async () => {
      const c = (await host()).collection
      return c.watched >= n && c.collected === c.watched && c.awaitingVerdict === 0 && c.retained === 0 ? c : null
    }, `every retired generation proved collected (${n})`, 120_000, 500)
    let taken = 0
    const heapAfterFullGc = async () => {
      s.child.kill('SIGUSR2')
      taken++
      await waitFor(() => readdirSync(snapshots).filter((f) => f.endsWith('.heapsnapshot')).length === taken, 'the heap snapshot', 60_000, 200)
      // The snapshot is written on the main thread: this answer comes after it, and its GC.
      const heap = (await host()).memory.heapUsed
      for (const f of readdirSync(snapshots)) rmSync(path.join(snapshots, f), { force: true })
      taken = 0
      return heap
    }

    for (let i = 1; i <= 50; i++) await reload(i)
    // The first reload loads generation 1; each later one retires the one before.
    await allCollected(49)
    const before = await heapAfterFullGc()
    for (let i = 51; i <= 1050; i++) await reload(i)
    const proved = await allCollected(1049)
    const after = await heapAfterFullGc()
    const growthMiB = (after - before) / 1048576
    console.log(`1000 reloads through the binary: ${proved.collected} generations proved collected, ${proved.retained} retained; heap after a full GC ${(before / 1048576).toFixed(1)} → ${(after / 1048576).toFixed(1)} MiB`)
    expect(proved).toMatchObject({ collected: 1049, retained: 0 })
    // 1000 retained generations would be 250 MiB; a handful of MiB is allocator noise.
    expect(growthMiB).toBeLessThan(8)
  }, 600_000)
})
