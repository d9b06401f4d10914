// CPU time and resident memory of a process tree, read from /proc (Linux). A bench target is a
// host with its workers, a web server with its pool, or a server spawning a process per request:
// what it costs is what the whole tree costs, including children that have already exited (their
// CPU time is added to their parent's cutime/cstime when it reaps them).
import { allStats, clockTicks, readStat, rssBytes } from '../modes/proc.ts'

export { procAvailable } from '../modes/proc.ts'

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
  for (const pid of processTree(roots)) { const st = readStat(pid); if (st) ticks += st.ownTicks + st.reapedTicks }
  return ticks / clockTicks()
}

/** Resident set size of the tree now, in bytes. */
export function treeRssBytes(roots: readonly number[]): number {
  let bytes = 0
  for (const pid of processTree(roots)) bytes += rssBytes(pid)
  return bytes
}

/** Samples the tree's RSS every `everyMs` until stopped; returns the peak seen. */
export function sampleRss(roots: readonly number[], everyMs = 100): { stop(): number } {
  let peak = treeRssBytes(roots)
  const timer = setInterval(() => { peak = Math.max(peak, treeRssBytes(roots)) }, everyMs)
  return { stop() { clearInterval(timer); return Math.max(peak, treeRssBytes(roots)) } }
}
