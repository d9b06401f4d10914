// The one JSON document `resident bench --json` prints, and the HTML report is drawn from.
import os from 'node:os'
import type { Claim } from '../claims.ts'
import type { BenchSettings, TargetResult } from '../run.ts'

export interface BenchDocument {
  date: string
  machine: { cpus: number; cpuModel: string; totalMemoryBytes: number; platform: string; release: string; arch: string; node: string }
  settings: BenchSettings & { extension: string; command: string; params: Record<string, string>; method: string; modes: string[]; config: string | null }
  modes: TargetResult[]
  baselines: TargetResult[]
  claims: Claim[]
}

export function benchDocument(results: TargetResult[], claims: Claim[], settings: BenchDocument['settings']): BenchDocument {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      totalMemoryBytes: os.totalmem(),
      platform: os.platform(),
      release: os.release(),
      arch: os.arch(),
      node: process.version,
    },
    settings,
    modes: results.filter((r) => r.kind === 'mode'),
    baselines: results.filter((r) => r.kind === 'baseline'),
    claims,
  }
}
