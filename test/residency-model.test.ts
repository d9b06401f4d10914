// Model-based test of the registry under concurrency: fast-check drives random interleavings of
// request leases, first loads, reloads, admin unload/load, idle and memory eviction, loads that
// must first make room under a budget (admission evicting idle extensions), failing and slow
// initialisation, and after every step checks that every generation ever created is exactly
// one of current, loading, draining or retired (disposed once, host timers cleared, watched for
// collection), and that every counter agrees with what the test itself holds.
//
// Loads are real (esbuild + the in-process executor on real files); only the moment a finished load
// is handed back to the registry is under the test's control, which is what makes a load "slow".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import fc from 'fast-check'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import type { Executor, LoadSpec, LoadedModule } from '../src/modes/executor.ts'
import { Executors } from '../src/modes/executors.ts'
import { InProcessExecutor } from '../src/modes/inprocess.ts'
import type { Generation } from '../src/residency/generation.ts'
import { Registry } from '../src/residency/registry.ts'
import type { ExtensionHost } from '../src/sdk/types.ts'

const NAMES = ['alpha', 'beta'] as const
type Name = typeof NAMES[number]

/** What each constructed instance reports about itself (set up by the extension's own code). */
interface Rec { name: string; gen: number; inited: boolean; disposed: number; host: ExtensionHost }
interface Probe { recs: Rec[]; failNext: Record<string, boolean> }
const probe = (globalThis as { __modelProbe?: Probe })

const SOURCE = `import { Extension } from 'resident-host'
export default class Model extends Extension {
  rec
  // Memory its eviction frees: what lets a load under a tight budget make room.
  held = Buffer.alloc(4 * 1024 * 1024, 1)
  init() {
    const p = globalThis.__modelProbe
    this.rec = { name: this.host.name, gen: this.host.generation, inited: false, disposed: 0, host: this.host }
    p.recs.push(this.rec)
    // A host-handle timer that would keep the generation alive if it were never retired.
    this.host.setInterval(() => {}, 3_600_000)
    if (p.failNext[this.host.name]) { p.failNext[this.host.name] = false; throw new Error('init failed on purpose') }
    this.rec.inited = true
  }
  dispose() { this.rec.disposed++ }
  hit() { return this.rec.gen }
}`

/** True once the generation's host handle was released (its timers cleared): the handle then refuses new timers. */
function released(rec: Rec): boolean {
  try {
    const t = rec.host.setTimeout(() => {}, 3_600_000)
    rec.host.clearTimeout(t)
    return false
  } catch { return true }
}

/** The in-process executor, with each finished load held until the test opens its gate. */
class GatedExecutor implements Executor {
  readonly mode = 'inprocess' as const
  readonly #inner = new InProcessExecutor()
  /** Loads whose result has not been handed to the registry yet: name#generation → open(). */
  readonly held = new Map<string, () => void>()
  /** Real work under way: builds and disposals. */
  busy = 0

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const key = `${spec.name}#${spec.generation}`
    this.busy++
    let outcome: { ok: true; m: LoadedModule } | { ok: false; e: unknown }
    try {
      outcome = { ok: true, m: await this.#inner.load(spec) }
    } catch (e) {
      outcome = { ok: false, e }
    } finally {
      this.busy--
    }
    await new Promise<void>((resolve) => this.held.set(key, resolve))
    this.held.delete(key)
    if (!outcome.ok) throw outcome.e
    const m = outcome.m
    return {
      ...m,
      invoke: m.invoke.bind(m),
      cancel: m.cancel.bind(m),
      canUnload: m.canUnload.bind(m),
      dispose: async (reason) => {
        this.busy++
        try { await m.dispose(reason) } finally { this.busy-- }
      },
    }
  }

  open(key: string): void { this.held.get(key)?.() }
  async close(): Promise<void> {}
}

interface World {
  registry: Registry
  config: ReturnType<typeof resolveConfig>
  executor: GatedExecutor
  /** Leases the test holds, per extension. */
  leases: Record<Name, Generation[]>
  /** Successful acquires, per extension. */
  acquired: Record<Name, number>
  /** Operations started and not yet settled; failures the registry may legitimately answer are expected. */
  pending: Set<Promise<unknown>>
  unexpected: unknown[]
}

const EXPECTED = new Set(['RES_ERR_LOAD_FAILED', 'RES_ERR_EXTENSION_FAILED'])

function track(w: World, p: Promise<unknown>): void {
  const t = p.catch((e: unknown) => {
    if (!EXPECTED.has((e as { code?: string })?.code ?? '')) w.unexpected.push(e)
  }).finally(() => w.pending.delete(t))
  w.pending.add(t)
}

/** Lets everything that is not waiting on the test run: builds, disposals, then the microtasks after them. */
async function settle(w: World): Promise<void> {
  for (let quiet = 0; quiet < 4;) {
    await tick()
    if (w.executor.busy > 0) { quiet = 0; await new Promise((r) => setTimeout(r, 1)); continue }
    quiet++
  }
  // File lookups (findEntry) go through the thread pool: give them time, then settle again.
  await new Promise((r) => setTimeout(r, 2))
  for (let quiet = 0; quiet < 4;) {
    await tick()
    if (w.executor.busy > 0) { quiet = 0; await new Promise((r) => setTimeout(r, 1)); continue }
    quiet++
  }
}

/** The invariant, and every counter, checked against what the test knows independently. */
function check(w: World, final = false): void {
  expect(w.unexpected).toEqual([])
  let retiredTotal = 0
  for (const name of NAMES) {
    const slot = w.registry.slots.get(name)
    const draining = new Set([...(slot?.draining ?? [])].map((g) => g.id))
    const recs = probe.__modelProbe!.recs.filter((r) => r.name === name)
    let retired = 0
    for (const rec of recs) {
      expect(rec.disposed, `${name}#${rec.gen} disposed at most once`).toBeLessThanOrEqual(1)
      if (!rec.inited) {
        // A failed init creates no generation, and releases what it made.
        expect(released(rec), `${name}#${rec.gen}: failed init released its timers`).toBe(true)
        continue
      }
      const states = [
        slot?.current?.id === rec.gen && rec.disposed === 0 ? 'current' : null,
        w.executor.held.has(`${name}#${rec.gen}`) ? 'loading' : null,
        draining.has(rec.gen) && rec.disposed === 0 ? 'draining' : null,
        rec.disposed === 1 && released(rec) ? 'retired' : null,
      ].filter((s) => s !== null)
      expect(states, `${name} generation ${rec.gen} is exactly one of current, loading, draining, retired`).toHaveLength(1)
      if (states[0] === 'retired') retired++
      if (final) expect(states[0]).toBe('retired')
    }
    retiredTotal += retired
    // The registry's own books agree with the probe's, and add up.
    const l = slot?.ledger ?? { created: 0, current: 0, loading: 0, draining: 0, retired: 0 }
    // (A load still held by the test has not been handed to the registry: it knows nothing of it yet.)
    const handedOver = recs.filter((r) => r.inited && !w.executor.held.has(`${name}#${r.gen}`)).length
    expect(l.created, `${name}: generations created`).toBe(handedOver)
    expect(l.current + l.loading + l.draining + l.retired, `${name}: created = current + loading + draining + retired`).toBe(l.created)
    expect(l.retired, `${name}: retired`).toBe(retired)
    const leases = w.leases[name]
    expect(slot?.inFlight ?? 0, `${name}: inFlight`).toBe(leases.length)
    const gens = [slot?.current, ...(slot?.draining ?? [])].filter((g): g is Generation => !!g)
    expect(gens.reduce((n, g) => n + g.inflight, 0), `${name}: leases on its generations`).toBe(leases.length)
    expect(slot?.requestsTotal ?? 0, `${name}: requests`).toBe(w.acquired[name])
    const unloads = Object.values(slot?.unloads ?? {}).reduce((a, b) => a + (b ?? 0), 0)
    expect(unloads, `${name}: retirements recorded`).toBe(retired)
  }
  expect(w.registry.collection.totals.watched, 'every retired generation is watched for collection').toBe(retiredTotal)
}

// Commands ---------------------------------------------------------------------------------------
type Cmd = fc.AsyncCommand<object, World>
const name = fc.constantFrom(...NAMES)

const step = (label: string, fn: (w: World) => void) => (n: Name): Cmd => ({
  check: () => true,
  async run(_m, w) { fn.call(null, w); await settle(w); check(w) },
  toString: () => `${label}(${n})`,
})

function request(n: Name): Cmd {
  return step('request', (w) => track(w, w.registry.acquire(n).then((gen) => {
    if (!gen) throw new Error(`${n} not found`)
    const rec = probe.__modelProbe!.recs.find((r) => r.name === n && r.gen === gen.id)
    if (!rec || rec.disposed > 0) w.unexpected.push(new Error(`${n}: leased generation ${gen.id}, already disposed`))
    w.acquired[n]++
    w.leases[n].push(gen)
  })))(n)
}
const release = (n: Name): Cmd => step('release', (w) => {
  const gen = w.leases[n].shift()
  if (gen) w.registry.release(gen)
})(n)
const reload = (n: Name): Cmd => step('reload', (w) => track(w, w.registry.reload(n)))(n)
const unload = (n: Name): Cmd => step('adminUnload', (w) => track(w, w.registry.unload(n, 'admin')))(n)
const adminLoad = (n: Name): Cmd => step('adminLoad', (w) => {
  w.registry.resetFailure(n)
  track(w, w.registry.acquire(n).then((gen) => { if (gen) { w.acquired[n]++; w.registry.release(gen) } }))
})(n)
const idle = (n: Name): Cmd => step('idleEvict', (w) => track(w, w.registry.unloadIfIdle(n, 'idle')))(n)
const memory = (n: Name): Cmd => step('memoryEvict', (w) => track(w, w.registry.unloadIfIdle(n, 'memory')))(n)
const failNext = (n: Name): Cmd => step('failNextInit', () => { probe.__modelProbe!.failNext[n] = true })(n)
/** Hands the oldest held load of `n` to the registry (a load not opened yet is a slow one). */
const finishLoad = (n: Name): Cmd => step('finishLoad', (w) => {
  const key = [...w.executor.held.keys()].find((k) => k.startsWith(`${n}#`))
  if (key) w.executor.open(key)
})(n)

/**
 * A budget set from the process's RSS now, so that a load must first make room: admission evicts
 * idle extensions (young ones too) while everything else runs.
 */
const squeeze = (): Cmd => ({
  check: () => true,
  // 2 MB over RSS now: a load (4 MB) goes past the limit itself unless it makes room first.
  async run(_m, w) { w.config.memory.budget = process.memoryUsage.rss() + 2 * 1024 ** 2; await settle(w); check(w) },
  toString: () => 'squeeze()',
})
const relax = (): Cmd => ({
  check: () => true,
  async run(_m, w) { w.config.memory.budget = null; await settle(w); check(w) },
  toString: () => 'relax()',
})

const commands = fc.commands([
  fc.constant(null).map(squeeze), fc.constant(null).map(squeeze), fc.constant(null).map(squeeze), fc.constant(null).map(relax),
  name.map(request), name.map(request),
  name.map(release),
  name.map(reload),
  name.map(unload),
  name.map(adminLoad),
  name.map(idle),
  name.map(memory),
  name.map(failNext),
  name.map(finishLoad), name.map(finishLoad), name.map(finishLoad),
], { maxCommands: 30 })

/** Lets every held load through, ends every lease, and settles until no operation is left. */
async function drainAll(w: World): Promise<void> {
  const leased = () => NAMES.some((n) => w.leases[n].length > 0)
  for (let round = 0; round < 200 && (w.pending.size > 0 || w.executor.held.size > 0 || leased()); round++) {
    for (const key of [...w.executor.held.keys()]) w.executor.open(key)
    for (const n of NAMES) for (const gen of w.leases[n].splice(0)) w.registry.release(gen)
    await settle(w)
    // A loaded machine may take longer than a settle over a build: give pending work real time.
    if (w.pending.size > 0) await Promise.race([Promise.allSettled([...w.pending]), new Promise((r) => setTimeout(r, 20))])
  }
  expect(w.pending.size, 'every operation settled').toBe(0)
}

describe('registry under random interleavings (model-based)', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-model-'))
    for (const n of NAMES) writeFileSync(path.join(dir, `${n}.ts`), SOURCE)
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
    delete probe.__modelProbe
  })

  it('keeps every generation current, loading, draining or retired exactly once, and every counter exact', async () => {
    await fc.assert(fc.asyncProperty(commands, async (cmds) => {
      probe.__modelProbe = { recs: [], failNext: {} }
      const config = resolveConfig({
        extensionsDir: dir, drainTimeout: '1h',
        // minResidency 1h: only a load waiting for room may evict a young extension.
        memory: { checkInterval: '1h', minResidency: '1h' },
        unload: { collectionGrace: '1h', maxDeclines: 0 },
        rapidFail: { maxFailures: 2, window: '1h', backoff: '1h', maxBackoff: '1h' },
      }, { cwd: dir })
      const executor = new GatedExecutor()
      const log = pino({ level: 'silent' })
      const registry = new Registry({ config, executors: new Executors({ config, log }, { inprocess: executor }), log })
      const w: World = {
        registry, executor, config,
        leases: { alpha: [], beta: [] }, acquired: { alpha: 0, beta: 0 },
        pending: new Set(), unexpected: [],
      }
      try {
        await fc.asyncModelRun(() => ({ model: {}, real: w }), cmds)
        // Loads still waiting for room (up to 2 s each) find it at once.
        config.memory.budget = null
        await drainAll(w)
        check(w)
        const closing = registry.close()
        await drainAll(w)
        await closing
        await settle(w)
        check(w, true)
      } finally {
        for (const key of [...executor.held.keys()]) executor.open(key)
        await registry.close().catch(() => undefined)
      }
    }), { numRuns: Number(process.env.MODEL_RUNS ?? 150) })
  }, 300_000)
})
