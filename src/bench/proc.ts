// CPU time and resident memory of a process tree, read from /proc (Linux). A bench target is a
// host with its workers, a web server with its pool, or a server spawning a process per request:
// what it costs is what the whole tree costs, including children that have already exited (their
// CPU time is added to their parent's cutime/cstime when it reaps them).
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { ticksPerSecond = 100 }
  }
  return ticksPerSecond
}

export const procAvailable = (): boolean => {
  try { readFileSync('/proc/self/stat'); return true } catch { return false }
}

interface Stat { pid: number; ppid: number; cpuTicks: number }

function readStat(pid: number): Stat | undefined {
  let text: string
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return undefined }
  // The command name (field 2) is in parentheses and may hold spaces: read the fields after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const n = (i: number) => Number(fields[i])
  return { pid, ppid: n(1), cpuTicks: n(11) + n(12) + n(13) + n(14) }
}

function allStats(): Stat[] {
  const out: Stat[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const s = readStat(Number(entry))
    if (s) out.push(s)
  }
  return out
}

/** The given roots and every live descendant. */
export function processTree(roots: readonly number[]): number[] {
  const stats = allStats()
  const children = new Map<number, number[]>()
  for (const s of stats) {
    const list = children.get(s.ppid)
    if (list) list.push(s.pid)
    else children.set(s.ppid, [s.pid])
  }
  const seen = new Set<number>()
  const stack = [...roots]
  while (stack.length > 0) {
    const pid = stack.pop()!
    if (seen.has(pid)) continue
    seen.add(pid)
    for (const c of children.get(pid) ?? []) stack.push(c)
  }
  return [...seen]
}

/** CPU seconds the tree has used so far (user + system, its reaped children included). */
export function treeCpuSeconds(roots: readonly number[]): number {
  let ticks = 0
  for (const pid of processTree(roots)) ticks += readStat(pid)?.cpuTicks ?? 0
  return ticks / clockTicks()
}

/** Resident set size of the tree now, in bytes. */
export function treeRssBytes(roots: readonly number[]): number {
  let kb = 0
  for (const pid of processTree(roots)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) kb += Number(m[1])
    } catch { /* exited meanwhile */ }
  }
  return kb * 1024
}

/** Samples the tree's RSS every `everyMs` until stopped; returns the peak seen. */
export function sampleRss(roots: readonly number[], everyMs = 100): { stop(): number } {
  let peak = treeRssBytes(roots)
  const timer = setInterval(() => { peak = Math.max(peak, treeRssBytes(roots)) }, everyMs)
  return { stop() { clearInterval(timer); return Math.max(peak, treeRssBytes(roots)) } }
}
