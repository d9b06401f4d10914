import type { Cell, Section, View } from './view.ts'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
/** Every piece of text on the page goes through this: names and error messages come from files anyone may have written. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

/**
 * The dashboard's Content-Security-Policy: its own script and stylesheet, its own event stream
 * and admin calls, nothing inline, no frames, no forms, no base.
 */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const W = 120
const H = 24

/** A sparkline's polyline points from numbers (nulls are gaps drawn as 0). Only numbers reach the markup. */
export function sparkPoints(values: Array<number | null>): string {
  if (values.length === 0) return ''
  const max = Math.max(1e-9, ...values.map((v) => v ?? 0))
  const step = values.length > 1 ? W / (values.length - 1) : 0
  return values.map((v, i) => `${(i * step).toFixed(1)},${(H - 1 - ((v ?? 0) / max) * (H - 2)).toFixed(1)}`).join(' ')
}

function cell(c: Cell, state: boolean, pre: boolean): string {
  if (typeof c !== 'string') {
    const last = c.spark.at(-1)
    return `<td class="spark"><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="p50 over the last minute${last != null ? `, now ${Number(last)} ms` : ''}"><polyline points="${sparkPoints(c.spark)}"/></svg></td>`
  }
  return `<td${state ? ' class="state"' : ''}>${pre ? `<pre>${escapeHtml(c)}</pre>` : escapeHtml(c)}</td>`
}

function section(s: Section): string {
  const head = `<h2>${escapeHtml(s.title)}</h2>`
  if (s.rows.length === 0) return `<section id="sec-${escapeHtml(s.id)}">${head}<p class="empty">${escapeHtml(s.empty)}</p></section>`
  const rows = s.rows.map((r) => {
    const cells = r.cells.map((c, i) => (i === r.cells.length - 1 && r.actions
      ? `<td class="actions">${r.actions.map((a) => `<button type="button" data-action="${a}" data-name="${escapeHtml(r.key)}" hidden>${a}</button>`).join(' ')}</td>`
      : cell(c, i === s.stateColumn, s.pre === true && i === r.cells.length - 1))).join('')
    return `<tr data-key="${escapeHtml(r.key)}"${r.tone ? ` class="${r.tone}"` : ''}>${cells}</tr>`
  }).join('')
  return `<section id="sec-${escapeHtml(s.id)}">${head}<table><thead><tr>${s.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table></section>`
}

/** The whole page: a complete snapshot without JavaScript; the script keeps it live. */
export function renderDashboard(view: View): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Resident dashboard</title>
<link rel="icon" href="/_resident/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/_resident/dashboard.css">
<script src="/_resident/dashboard.js" defer></script>
</head>
<body>
<header>
<h1>Resident</h1>
<p id="summary">${escapeHtml(view.summary)}</p>
<p id="live" class="static">snapshot of ${escapeHtml(view.generatedAt)}: reload the page for a newer one</p>
</header>
<main id="sections">
${view.sections.map(section).join('\n')}
</main>
<p id="message" role="status"></p>
</body>
</html>
`
}
