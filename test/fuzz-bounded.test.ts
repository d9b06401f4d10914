import { readFileSync } from 'node:fs'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { fuzzConnections, runFuzz } from './helpers/fuzz.ts'

const ROOT = path.resolve(import.meta.dirname, '..')

// A few seconds of the bounded-cost fuzz (bench/fuzz.ts runs it for longer): generated requests,
// pipelined, cut off and abandoned, against the examples with their filters and config.
describe('bounded-cost fuzz (fixed seed)', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    const shipped = JSON.parse(readFileSync(path.join(ROOT, 'resident.config.json'), 'utf8')) as Record<string, unknown>
    t = await startTestServer({
      inRepo: true,
      config: { ...shipped, logLevel: 'silent', extensionsDir: path.join(ROOT, 'extensions'), filtersDir: path.join(ROOT, 'filters') },
    })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it('no 5xx for client faults, every error a JSON body, no event-loop stall, every lease back to 0', async () => {
    const connections = fuzzConnections(19, 160)
    // First loads (build, evaluate, init: the cache example allocates 64 MB) are not what is measured.
    for (const name of ['hello', 'calc', 'counter', 'cache', 'markdown', 'stream', 'secret']) await fetch(`${base}/_resident/extensions/${name}/load`, { method: 'POST', headers: { 'x-resident-admin': '1' } })
    const loop = monitorEventLoopDelay({ resolution: 10 })
    loop.enable()
    const report = await runFuzz(base, connections, 8)
    loop.disable()
    expect(report.problems).toEqual([])
    expect(report.responses, JSON.stringify(report.statuses)).toBeGreaterThan(100)
    // A behaviour bound, not a benchmark: nothing a client sends holds the event loop. On shared
    // cores the scheduler alone can delay one tick by a few hundred ms, so the 200 ms bound is on
    // the 99th percentile, and no single stall may reach 2 s (the quadratic number regex held the
    // loop 7.7 s, marked 44 s).
    const stalls = `event-loop delay p99 ${Math.round(loop.percentile(99) / 1e6)} ms, max ${Math.round(loop.max / 1e6)} ms`
    expect(loop.percentile(99) / 1e6, stalls).toBeLessThan(200)
    expect(loop.max / 1e6, stalls).toBeLessThan(2000)
    await expect.poll(() => [...t.server.registry.slots.values()].reduce((n, s) => n + s.inFlight, 0), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => t.server.budget.inFlight, { timeout: 10_000 }).toBe(0)
  }, 60_000)
})
