import type { ProcessSnapshot } from './snapshot.ts'

/**
 * The dashboard as data: titled sections of plain-text cells. The server renders it to HTML for
 * the first paint (and for browsers without JavaScript); the page's script renders the same
 * structure from each Server-Sent Event with textContent only. Nothing in it is HTML.
 */
export interface View {
  generatedAt: string
  summary: string
  sections: Section[]
}

export type Cell = string | { spark: Array<number | null> }
export interface Row {
  key: string
  cells: Cell[]
  /** ok | warn | bad: colours the row's state cell. */
  tone?: 'ok' | 'warn' | 'bad'
  /** Admin actions offered for an extension row. */
  actions?: Array<'reload' | 'unload'>
}
export interface Section {
  id: string
  title: string
  columns: string[]
  rows: Row[]
  /** Shown instead of an empty table. */
  empty: string
  /** Rows whose text is preformatted (code frames). */
  pre?: boolean
  /** The column coloured by the row's tone. */
  stateColumn?: number
}

const mb = (n: number | null | undefined) => (typeof n === 'number' ? `${(n / 1024 ** 2).toFixed(1)} MB` : '—')
const ms = (n: number | null | undefined) => (typeof n === 'number' ? `${n} ms` : '—')
const ago = (iso: string | null, now: number) => {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`
}
const duration = (s: number) => s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
const STATE_TONE: Record<string, Row['tone']> = { resident: 'ok', loading: 'warn', draining: 'warn', unloaded: undefined, failed: 'bad' }

/** The dashboard of one process, or of every process of a cluster (`processes` has one entry per worker). */
export function buildView(processes: ProcessSnapshot[], now = Date.now()): View {
  const first = processes[0]
  if (!first) return { generatedAt: new Date(now).toISOString(), summary: 'no server process is running', sections: [] }
  const n = processes.length
  const sections: Section[] = []

  sections.push({
    id: 'host', title: n > 1 ? `Processes (${n})` : 'Host', empty: '', stateColumn: 2,
    columns: ['pid', 'uptime', 'ready', 'heap', 'RSS / budget', 'pressure', 'evictions (idle / memory)', 'forced GCs'],
    rows: processes.map((p) => {
      const m = p.host.memory
      return {
        key: String(p.host.pid),
        tone: p.host.ready ? 'ok' : 'bad',
        cells: [
          String(p.host.pid), duration(p.host.uptimeSeconds), p.host.ready ? 'ready' : `not ready (${p.host.lifecycle})`,
          `${mb(m.heapUsed)} of ${mb(m.heapLimit)}`, `${mb(m.rss)} / ${m.budget ? mb(m.budget) : 'no budget'}`,
          `${Math.round(m.pressure.ratio * 100)}% (${m.pressure.signal}; evicts at ${Math.round(m.highWatermark * 100)}%)`,
          `${p.host.evictions.idle} / ${p.host.evictions.memory}`, String(p.host.forcedGc.count),
        ],
      }
    }),
  })

  // Extensions: one row per name, summed over processes.
  const names = [...new Set(processes.flatMap((p) => p.extensions.map((e) => e.name)))].sort()
  sections.push({
    id: 'extensions', title: 'Extensions', empty: 'no extensions in the folder', stateColumn: 1,
    columns: ['extension', 'state', 'mode', 'generation', 'requests', 'in flight', 'errors (load / 5xx)', 'p50 / p99', 'latency (last minute)', 'memory (load growth)', 'last used', ''],
    rows: names.map((name) => {
      const all = processes.map((p) => p.extensions.find((e) => e.name === name)).filter((e) => e !== undefined)
      const resident = all.filter((e) => e.state === 'resident').length
      const e0 = all.find((e) => e.state === 'resident') ?? all[0]!
      const state = n > 1 ? (resident > 0 ? `resident in ${resident} of ${n}` : e0.state) : e0.state
      const gens = [...new Set(all.map((e) => e.generation).filter((g) => g !== null))].join(', ')
      const sum = (f: (e: typeof e0) => number) => all.reduce((a, e) => a + f(e), 0)
      const lastUsed = all.map((e) => e.lastUsed).filter((x): x is string => x !== null).sort().at(-1) ?? null
      return {
        key: name,
        tone: resident > 0 ? 'ok' : STATE_TONE[e0.state],
        actions: ['reload', 'unload'],
        cells: [
          name, state, e0.mode, gens || '—', String(sum((e) => e.requests.total)), String(sum((e) => e.requests.inFlight)),
          `${sum((e) => e.errors)} / ${sum((e) => e.responses5xx)}`, `${ms(e0.latencyMs.p50)} / ${ms(e0.latencyMs.p99)}`, { spark: e0.trend.p50 },
          resident > 0 ? mb(sum((e) => (e.state === 'resident' ? e.heapGrowth.bytes ?? 0 : 0))) : '—', ago(lastUsed, now), '',
        ],
      }
    }),
  })

  sections.push({
    id: 'retired', title: 'Retired generations', empty: 'none retired yet', stateColumn: 4,
    columns: ['extension', 'generation', 'reason', 'when', 'collected', ...(n > 1 ? ['pid'] : [])],
    rows: processes.flatMap((p) => p.extensions.flatMap((e) => e.retired.map((r) => ({
      key: `${p.host.pid}:${e.name}:${r.generation}:${r.at}`,
      tone: r.collected === false ? 'bad' as const : r.collected ? 'ok' as const : 'warn' as const,
      cells: [e.name, String(r.generation), r.reason, ago(r.at, now),
        r.collected === null ? 'awaiting verdict' : r.collected ? 'collected' : 'retained: leak suspected', ...(n > 1 ? [String(p.host.pid)] : [])],
    })))).sort((a, b) => (a.key < b.key ? 1 : -1)).slice(0, 30),
  })

  sections.push({
    id: 'leaks', title: 'Suspected leaks', empty: 'none: every retired generation checked so far was collected', stateColumn: 1,
    columns: ['extension', 'retained generations'],
    rows: names.map((name) => ({ name, n: processes.reduce((a, p) => a + (p.extensions.find((e) => e.name === name)?.leaksSuspected ?? 0), 0) }))
      .filter((x) => x.n > 0).map((x) => ({ key: x.name, tone: 'bad' as const, cells: [x.name, String(x.n)] })),
  })

  const errors = processes.flatMap((p) => p.extensions.filter((e) => e.lastError).map((e) => ({ p, e })))
    .sort((a, b) => (a.e.lastError!.at < b.e.lastError!.at ? 1 : -1))
  sections.push({
    id: 'errors', title: 'Last build or load error', empty: 'none', pre: true, stateColumn: 0,
    columns: ['extension', 'when', 'error'],
    rows: errors.slice(0, 1).map(({ e }) => ({
      key: e.name, tone: 'bad' as const,
      cells: [e.name, ago(new Date(e.lastError!.at).toISOString(), now), e.lastError!.message],
    })),
  })

  sections.push({
    id: 'filters', title: 'Filter chain, in the order it runs', empty: 'no filters loaded',
    columns: ['#', 'filter', 'priority', 'generation', 'notifications', 'paths'],
    rows: first.filters.map((f, i) => ({
      key: f.name, cells: [String(i + 1), f.name, f.priority, String(f.generation), f.notifications.join(', '), f.paths ? 'some' : 'all'],
    })),
  })

  const mp = processes.flatMap((p) => p.modeProcesses.map((m) => ({ p, m })))
  sections.push({
    id: 'mode-processes', title: 'Worker and pool processes', empty: 'none running: extensions in the inprocess mode run in the server\'s own thread; worker and fastcgi pools appear here while their extension is loaded',
    columns: ['kind', 'id', 'pid', 'extension', 'state', 'requests', 'started', ...(n > 1 ? ['server pid'] : [])],
    rows: mp.map(({ p, m }) => ({
      key: `${p.host.pid}:${m.kind}:${m.id}`,
      cells: [m.kind, m.id, m.pid === null ? '—' : String(m.pid), m.extension === null ? '—' : m.generation === undefined ? m.extension : `${m.extension} #${m.generation}`, m.state,
        m.requests === undefined ? '—' : String(m.requests), m.startedAt ? ago(m.startedAt, now) : '—', ...(n > 1 ? [String(p.host.pid)] : [])],
    })),
  })

  const resident = names.filter((name) => processes.some((p) => p.extensions.find((e) => e.name === name)?.state === 'resident')).length
  return {
    generatedAt: new Date(now).toISOString(),
    summary: `${n > 1 ? `${n} processes` : `pid ${first.host.pid}`} · Node ${first.host.node} · ${first.host.mode} mode · ${resident} of ${names.length} extensions resident · updated ${new Date(now).toISOString().slice(11, 19)} UTC`,
    sections,
  }
}
