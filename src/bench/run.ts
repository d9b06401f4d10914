// `resident bench`: the same command measured in every mode and against the baselines, in one run.
// Every target starts afresh for every round in its own process tree; rounds alternate the order
// of the targets so the machine's drift cancels; a warm-up load precedes each measured one.
import { runLoad, type LoadResult } from './load.ts'
import { sampleRss, treeCpuSeconds } from './proc.ts'
import { median } from './stats.ts'
import type { BenchContext, Target } from './targets/types.ts'

export interface BenchSettings {
  duration: number
  warmup: number
  connections: number
  rounds: number
  /** How many unload + first request pairs measure the cold start (median). */
  coldSamples: number
}

export interface RoundSample extends LoadResult {
  round: number
  cpuPerRequestUs: number
  peakRssBytes: number
}

export interface TargetResult {
  name: string
  kind: 'mode' | 'baseline'
  /** Medians over the clean rounds (no errors, every answer 2xx); null when there were none. */
  reqPerSec: number | null
  p50: number | null
  p90: number | null
  p99: number | null
  /** Errors and non-2xx answers over all rounds. */
  errors: number
  non2xx: number
  cpuPerRequestUs: number | null
  peakRssBytes: number | null
  coldStartMs: number | null
  /** Ratio of medians against in-process, and the median of each round's own ratio. */
  ratioToInprocess: number | null
  pairedRatioToInprocess: number | null
  /** Rounds left out of the medians because they had errors or non-2xx answers. */
  dirtyRounds: number[]
  /** Why it did not run (not installed, failed to start). */
  skipped?: string
  rounds: RoundSample[]
}

export type Progress = (line: string) => void

async function measureOne(target: Target, ctx: BenchContext, settings: BenchSettings, round: number, wantCold: boolean, progress: Progress): Promise<{ sample: RoundSample; coldMs?: number }> {
  progress(`round ${round}/${settings.rounds} · ${target.name}: starting`)
  const running = await target.start(ctx, round)
  try {
    if (settings.warmup > 0) {
      progress(`round ${round}/${settings.rounds} · ${target.name}: warm-up ${settings.warmup} s`)
      await runLoad(running.request, settings.warmup, settings.connections)
    }
    progress(`round ${round}/${settings.rounds} · ${target.name}: load ${settings.duration} s × ${settings.connections} connections`)
    const roots = running.roots()
    const cpu0 = treeCpuSeconds(roots)
    const rss = sampleRss(roots)
    const load = await runLoad(running.request, settings.duration, settings.connections)
    const peakRssBytes = rss.stop()
    const cpu = treeCpuSeconds(roots) - cpu0
    const sample: RoundSample = { ...load, round, peakRssBytes, cpuPerRequestUs: load.requests > 0 ? (cpu * 1e6) / load.requests : 0 }
    let coldMs: number | undefined
    if (wantCold && running.coldStartMs) {
      progress(`round ${round}/${settings.rounds} · ${target.name}: cold start`)
      const times: number[] = []
      try {
        for (let i = 0; i < settings.coldSamples; i++) times.push(await running.coldStartMs())
      } catch (e) {
        progress(`round ${round}/${settings.rounds} · ${target.name}: no cold start (${(e as Error).message})`)
      }
      if (times.length > 0) coldMs = median(times)
    }
    return { sample, coldMs }
  } finally {
    await running.stop()
  }
}

export async function runBench(targets: Target[], ctx: BenchContext, settings: BenchSettings, progress: Progress = () => {}): Promise<TargetResult[]> {
  const results = new Map<string, TargetResult>()
  for (const t of targets) {
    results.set(t.name, {
      name: t.name, kind: t.kind, reqPerSec: null, p50: null, p90: null, p99: null, errors: 0, non2xx: 0,
      cpuPerRequestUs: null, peakRssBytes: null, coldStartMs: null, ratioToInprocess: null,
      pairedRatioToInprocess: null, dirtyRounds: [], skipped: t.missing(), rounds: [],
    })
  }
  const runnable = targets.filter((t) => !results.get(t.name)!.skipped)
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? runnable : [...runnable].reverse()
    for (const t of order) {
      const r = results.get(t.name)!
      if (r.skipped) continue
      try {
        const { sample, coldMs } = await measureOne(t, ctx, settings, round, round === settings.rounds, progress)
        r.rounds.push(sample)
        if (coldMs !== undefined) r.coldStartMs = coldMs
      } catch (e) {
        // A target that cannot start is reported, never averaged.
        const lines = (e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean)
        r.skipped = `failed in round ${round}: ${lines[0]}${lines.length > 1 ? ` … ${lines[lines.length - 1]}` : ''}`
      }
    }
  }
  for (const r of results.values()) summarise(r)
  const base = results.get('inprocess')
  for (const r of results.values()) ratios(r, base)
  return targets.map((t) => results.get(t.name)!)
}

const clean = (s: RoundSample) => s.errors === 0 && s.non2xx === 0 && s.requests > 0

function summarise(r: TargetResult): void {
  r.errors = r.rounds.reduce((n, s) => n + s.errors, 0)
  r.non2xx = r.rounds.reduce((n, s) => n + s.non2xx, 0)
  r.dirtyRounds = r.rounds.filter((s) => !clean(s)).map((s) => s.round)
  const ok = r.rounds.filter(clean)
  if (ok.length === 0) return
  const med = (f: (s: RoundSample) => number) => median(ok.map(f))
  r.reqPerSec = med((s) => s.reqPerSec)
  r.p50 = med((s) => s.p50)
  r.p90 = med((s) => s.p90)
  r.p99 = med((s) => s.p99)
  r.cpuPerRequestUs = med((s) => s.cpuPerRequestUs)
  r.peakRssBytes = Math.max(...ok.map((s) => s.peakRssBytes))
}

function ratios(r: TargetResult, base: TargetResult | undefined): void {
  if (!base || base.reqPerSec === null || r.reqPerSec === null) return
  r.ratioToInprocess = r.reqPerSec / base.reqPerSec
  // Paired: each round's ratio against in-process in the same round, then the median.
  const paired: number[] = []
  for (const s of r.rounds) {
    const b = base.rounds.find((x) => x.round === s.round)
    if (b && clean(s) && clean(b)) paired.push(s.reqPerSec / b.reqPerSec)
  }
  r.pairedRatioToInprocess = paired.length > 0 ? median(paired) : null
}
