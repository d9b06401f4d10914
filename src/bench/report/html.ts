// `resident bench --html report.html`: one self-contained page (inline SVG and CSS, no script, no
// network) with throughput per target and latency percentiles, the claims, and the conditions.
import type { BenchDocument } from './document.ts'
import type { TargetResult } from '../run.ts'

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))

const COLORS = { mode: '#2f6fdf', baseline: '#8a8f98', p50: '#2f9e6f', p90: '#e0a030', p99: '#d04a3a' }

/** A log-scale axis from the decade below `min` to the decade above `max`. */
function logScale(min: number, max: number, width: number) {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-3)))
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, 1e-3))))
  const at = (v: number) => ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * width
  const ticks: number[] = []
  for (let d = lo; d <= hi; d++) ticks.push(10 ** d)
  return { at, ticks }
}

function throughputChart(rows: TargetResult[]): string {
  const measured = rows.filter((r) => r.reqPerSec !== null)
  if (measured.length === 0) return '<p>No target completed a clean round.</p>'
  const label = 190
  const plot = 520
  const rowH = 26
  const height = measured.length * rowH + 30
  const { at, ticks } = logScale(Math.min(...measured.map((r) => r.reqPerSec!)), Math.max(...measured.map((r) => r.reqPerSec!)), plot)
  const bars = measured.map((r, i) => {
    const y = i * rowH + 4
    const w = Math.max(1, at(r.reqPerSec!))
    return `<g class="bar" data-target="${esc(r.name)}" data-kind="${r.kind}" data-value="${r.reqPerSec!.toFixed(3)}">
  <text class="label" x="${label - 8}" y="${y + 15}" text-anchor="end">${esc(r.name)}</text>
  <rect x="${label}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[r.kind]}"><title>${esc(r.name)}: ${fmt(r.reqPerSec!)} req/s</title></rect>
  <text class="value" x="${label + w + 6}" y="${y + 15}">${fmt(r.reqPerSec!)}</text>
</g>`
  })
  const axisY = measured.length * rowH + 8
  const axis = ticks.map((t) => `<line x1="${label + at(t)}" x2="${label + at(t)}" y1="0" y2="${axisY}" class="grid"/><text x="${label + at(t)}" y="${axisY + 16}" text-anchor="middle" class="tick">${t >= 1 ? t.toLocaleString('en') : t}</text>`)
  return `<svg id="throughput" role="img" aria-label="requests per second per target (log scale)" viewBox="0 0 ${label + plot + 90} ${height}" width="${label + plot + 90}" height="${height}">
${axis.join('\n')}
${bars.join('\n')}
</svg>`
}

function latencyChart(rows: TargetResult[]): string {
  const measured = rows.filter((r) => r.p50 !== null)
  if (measured.length === 0) return ''
  const label = 190
  const plot = 520
  const rowH = 30
  const height = measured.length * rowH + 30
  const all = measured.flatMap((r) => [r.p50!, r.p90!, r.p99!]).filter((v) => v > 0)
  const { at, ticks } = logScale(Math.min(...all, 0.1), Math.max(...all, 1), plot)
  const marks = measured.map((r, i) => {
    const y = i * rowH + 6
    const dots = (['p50', 'p90', 'p99'] as const).map((p) => `<circle class="pct" data-pct="${p}" data-value="${r[p]}" cx="${(label + at(r[p]! || 0.001)).toFixed(1)}" cy="${y + 9}" r="5" fill="${COLORS[p]}"><title>${esc(r.name)} ${p}: ${r[p]} ms</title></circle>`)
    return `<g class="latency" data-target="${esc(r.name)}">
  <text class="label" x="${label - 8}" y="${y + 13}" text-anchor="end">${esc(r.name)}</text>
  <line x1="${label + at(r.p50! || 0.001)}" x2="${label + at(r.p99! || 0.001)}" y1="${y + 9}" y2="${y + 9}" class="span"/>
  ${dots.join('\n  ')}
</g>`
  })
  const axisY = measured.length * rowH + 8
  const axis = ticks.map((t) => `<line x1="${label + at(t)}" x2="${label + at(t)}" y1="0" y2="${axisY}" class="grid"/><text x="${label + at(t)}" y="${axisY + 16}" text-anchor="middle" class="tick">${t} ms</text>`)
  return `<svg id="latency" role="img" aria-label="latency percentiles per target (log scale)" viewBox="0 0 ${label + plot + 40} ${height}" width="${label + plot + 40}" height="${height}">
${axis.join('\n')}
${marks.join('\n')}
</svg>
<p class="legend"><span style="color:${COLORS.p50}">●</span> p50 <span style="color:${COLORS.p90}">●</span> p90 <span style="color:${COLORS.p99}">●</span> p99</p>`
}

function table(rows: TargetResult[]): string {
  const cell = (n: number | null, d = 1) => (n === null ? '—' : n.toFixed(d))
  const body = rows.map((r) => `<tr data-target="${esc(r.name)}"><th>${esc(r.name)}</th>${r.reqPerSec === null
    ? `<td colspan="9">${esc(r.skipped ?? 'no clean round')}</td>`
    : `<td>${cell(r.reqPerSec, 0)}</td><td>${cell(r.p50)}</td><td>${cell(r.p90)}</td><td>${cell(r.p99)}</td><td>${r.errors + r.non2xx}</td><td>${cell(r.cpuPerRequestUs)}</td><td>${r.peakRssBytes === null ? '—' : (r.peakRssBytes / 1048576).toFixed(0)}</td><td>${cell(r.coldStartMs)}</td><td>${r.ratioToInprocess === null ? '—' : `${r.ratioToInprocess.toFixed(3)}× / ${r.pairedRatioToInprocess === null ? '—' : `${r.pairedRatioToInprocess.toFixed(3)}×`}`}</td>`}</tr>`)
  return `<table><thead><tr><th>target</th><th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>errors</th><th>CPU µs/req</th><th>peak RSS MB</th><th>cold ms</th><th>vs in-process (medians / paired)</th></tr></thead><tbody>${body.join('')}</tbody></table>`
}

export function renderHtml(doc: BenchDocument): string {
  const rows = [...doc.modes, ...doc.baselines]
  const s = doc.settings
  const m = doc.machine
  const params = Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join('&')
  const claims = doc.claims.map((c) => `<li class="${c.holds === null ? 'unknown' : c.holds ? 'holds' : 'fails'}"><b>${c.holds === null ? 'not measured' : c.holds ? 'holds' : 'does not hold'}</b> — ${esc(c.claim)}: ${esc(c.holds === null ? c.measured.replace(/^not measured: /, "") : c.measured)}</li>`)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>resident bench — ${esc(s.extension)}.${esc(s.command)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1d2330; padding: 0 1rem }
h1 { font-size: 1.4rem } h2 { font-size: 1.1rem; margin-top: 2rem }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330 } svg .tick { fill: #6b7280 }
svg .grid { stroke: #e5e7eb } svg .span { stroke: #9ca3af; stroke-width: 2 }
table { border-collapse: collapse; width: 100% } th, td { padding: .25rem .5rem; border-bottom: 1px solid #e5e7eb; text-align: right }
th:first-child { text-align: left } li.holds b { color: #2f9e6f } li.fails b { color: #d04a3a } li.unknown b { color: #6b7280 }
.meta { color: #4b5563 }
</style></head>
<body>
<h1>resident bench: <code>${esc(s.extension)}.${esc(s.command)}</code></h1>
<p class="meta">${esc(s.method)} /${esc(s.extension)}/${esc(s.command)}${params ? `?${esc(params)}` : ''} · ${s.rounds} rounds × ${s.duration} s (warm-up ${s.warmup} s) · ${s.connections} connections · modes served with ${s.config ? `<code>${esc(s.config)}</code>` : 'no configuration (no filters)'} · ${esc(doc.date)}<br>
${m.cpus} × ${esc(m.cpuModel)} · ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB · ${esc(m.platform)} ${esc(m.release)} ${esc(m.arch)} · Node ${esc(m.node)}</p>
<h2>Throughput (requests per second, median of clean rounds, log scale)</h2>
${throughputChart(rows)}
<h2>Latency percentiles (ms, log scale)</h2>
${latencyChart(rows)}
<h2>The claims</h2>
<ul>${claims.join('')}</ul>
<h2>All figures</h2>
${table(rows)}
<p class="meta">Modes are Resident serving the same extension; baselines do the greeting's work (bare node:http and fastify in process, the peers through their own stacks). A round with errors or non-2xx answers is left out of the medians and listed.</p>
</body></html>
`
}
