// The report on the terminal: one row per target, then the claims.
import type { Claim } from '../claims.ts'
import type { TargetResult } from '../run.ts'

const num = (n: number | null, digits = 0) => (n === null ? '—' : n.toFixed(digits))
const mb = (n: number | null) => (n === null ? '—' : `${(n / 1048576).toFixed(0)} MB`)
const ratio = (n: number | null) => (n === null ? '—' : `${n.toFixed(n >= 10 ? 1 : 3)}×`)

export function renderTable(results: TargetResult[], claims: Claim[]): string {
  const head = ['target', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'CPU µs/req', 'peak RSS', 'cold ms', 'vs in-process', 'paired']
  const rows = results.map((r) => r.skipped && r.rounds.length === 0
    ? [r.name, `skipped: ${r.skipped}`]
    : [
        r.name, num(r.reqPerSec), num(r.p50, 1), num(r.p90, 1), num(r.p99, 1),
        `${r.errors + r.non2xx}${r.dirtyRounds.length ? ` (rounds ${r.dirtyRounds.join(',')} left out)` : ''}`,
        num(r.cpuPerRequestUs, 1), mb(r.peakRssBytes), num(r.coldStartMs, 1), ratio(r.ratioToInprocess), ratio(r.pairedRatioToInprocess),
      ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.length === 2 && cells[1]!.startsWith('skipped')
    ? `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}`
    : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const out = [line(head), ...rows.map(line), '']
  const faults = results.filter((r) => r.dirtyRounds.length > 0)
  if (faults.length > 0) {
    for (const r of faults) out.push(`errors in ${r.name}: ${describeErrors(r)}`)
    out.push('')
  }
  for (const c of claims) out.push(`${c.holds === null ? '  ?' : c.holds ? 'yes' : ' no'}  ${c.claim}: ${c.measured}`)
  return `${out.join('\n')}\n`
}

/** What went wrong in a target's dirty rounds: each error kind with its count, and non-2xx answers. */
export function describeErrors(r: TargetResult): string {
  const kinds = new Map<string, number>()
  for (const round of r.rounds) for (const [k, n] of Object.entries(round.errorKinds ?? {})) kinds.set(k, (kinds.get(k) ?? 0) + n)
  const parts = [...kinds].map(([k, n]) => `${k} ×${n}`)
  if (r.non2xx > 0) parts.push(`non-2xx answers ×${r.non2xx}`)
  return parts.length > 0 ? parts.join(', ') : `${r.errors} connection errors`
}
