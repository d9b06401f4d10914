// A strict parser of Prometheus' text exposition format (0.0.4): every line must be a HELP, a
// TYPE or a sample of a metric whose TYPE came first; label values must be escaped correctly;
// histograms must have ascending `le` bounds with non-decreasing counts ending in +Inf = _count.
// It throws on the first violation, naming the line.

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Family { name: string; help: string; type: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(s: string, line: string): number {
  // As Prometheus reads them (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan"
  // for a gauge not measured yet (the event-loop lag in a process's first moments).
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity
  if (/^-inf(inity)?$/i.test(s)) return -Infinity
  if (/^nan$/i.test(s)) return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value "${s}" in: ${line}`)
  return Number(s)
}

function parseLabels(body: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < body.length) {
    const eq = body.indexOf('=', i)
    if (eq === -1) throw new Error(`bad labels in: ${line}`)
    const key = body.slice(i, eq)
    if (!LABEL.test(key)) throw new Error(`bad label name "${key}" in: ${line}`)
    if (key in labels) throw new Error(`duplicate label "${key}" in: ${line}`)
    if (body[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`)
    let j = eq + 2
    let value = ''
    for (;;) {
      if (j >= body.length) throw new Error(`unterminated label value in: ${line}`)
      const c = body[j]!
      if (c === '"') break
      if (c === '\\') {
        const n = body[j + 1]
        if (n === 'n') value += '\n'
        else if (n === '\\' || n === '"') value += n
        else throw new Error(`bad escape in: ${line}`)
        j += 2
        continue
      }
      if (c === '\n') throw new Error(`raw newline in label value: ${line}`)
      value += c
      j++
    }
    labels[key] = value
    i = j + 1
    if (i < body.length) {
      if (body[i] !== ',') throw new Error(`expected "," between labels in: ${line}`)
      i++
    }
  }
  return labels
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  if (families.has(sample)) return families.get(sample)
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length))
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f
    }
  }
  return undefined
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline')
  const families = new Map<string, Family>()
  const helps = new Map<string, string>()
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    if (line.startsWith('# HELP ')) {
      const [, name, ...rest] = line.split(' ').slice(1)
      void name
      const n = line.slice(7).split(' ')[0]!
      if (!NAME.test(n)) throw new Error(`bad metric name in: ${line}`)
      if (helps.has(n)) throw new Error(`second HELP for ${n}`)
      helps.set(n, rest.join(' '))
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const [n, type, extra] = line.slice(7).split(' ')
      if (!n || !NAME.test(n) || !type || !TYPES.has(type) || extra !== undefined) throw new Error(`bad TYPE line: ${line}`)
      if (families.has(n)) throw new Error(`second TYPE for ${n}`)
      families.set(n, { name: n, help: helps.get(n) ?? '', type, samples: [] })
      continue
    }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line)
    if (!m) throw new Error(`bad sample line: ${line}`)
    const family = familyOf(m[1]!, families)
    if (!family) throw new Error(`sample before its TYPE: ${line}`)
    const value = parseValue(m[3]!, line)
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`negative counter: ${line}`)
    family.samples.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2], line) : {}, value })
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: Family): void {
  const series = new Map<string, Sample[]>()
  const key = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le').sort())
  for (const s of f.samples) if (s.name === `${f.name}_bucket`) {
    if (s.labels.le === undefined) throw new Error(`${f.name}_bucket without le`)
    series.set(key(s.labels), [...(series.get(key(s.labels)) ?? []), s])
  }
  for (const [k, buckets] of series) {
    let lastLe = -Infinity
    let lastCount = 0
    for (const b of buckets) {
      const le = parseValue(b.labels.le!, b.labels.le!)
      if (!(le > lastLe)) throw new Error(`${f.name}: le not ascending in ${k}`)
      if (b.value < lastCount) throw new Error(`${f.name}: bucket counts decrease in ${k}`)
      lastLe = le
      lastCount = b.value
    }
    if (lastLe !== Infinity) throw new Error(`${f.name}: no +Inf bucket in ${k}`)
    const count = f.samples.find((s) => s.name === `${f.name}_count` && key(s.labels) === k)
    if (!count || count.value !== lastCount) throw new Error(`${f.name}: _count differs from the +Inf bucket in ${k}`)
  }
}

/** The value of one sample, matching every given label; undefined when absent. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value
    }
  }
  return undefined
}
