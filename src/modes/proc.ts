// What Linux says about a process in /proc: its CPU time, its parent and its resident memory. The
// out-of-process modes report their workers with it, the memory budget counts them, and the bench
// measures whole process trees. Elsewhere (no /proc) every reading is empty.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** The kernel's clock ticks per second (CPU times in /proc are counted in them). */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { ticksPerSecond = 100 }
  }
  return ticksPerSecond
}

export const procAvailable = (): boolean => {
  try { readFileSync('/proc/self/stat'); return true } catch { return false }
}

export interface ProcStat {
  pid: number
  ppid: number
  /** User + system time of the process itself, in clock ticks. */
  ownTicks: number
  /** The same for its children it has reaped (cutime + cstime). */
  reapedTicks: number
}

/** /proc/<pid>/stat, or undefined when the process is gone (or there is no /proc). */
export function readStat(pid: number): ProcStat | undefined {
  let text: string
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return undefined }
  // The command name (field 2) is in parentheses and may hold spaces: read the fields after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const n = (i: number) => Number(fields[i])
  return { pid, ppid: n(1), ownTicks: n(11) + n(12), reapedTicks: n(13) + n(14) }
}

/** User + system CPU time of a process in ms, or 0 when it cannot be read. */
export function cpuMs(pid: number): number {
  const s = readStat(pid)
  return s === undefined ? 0 : (s.ownTicks * 1000) / clockTicks()
}

/** Resident set size of a process in bytes, or 0 when it cannot be read. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch { return 0 }
}

/** Every process's stat (those that exit while being read are left out). */
export function allStats(): ProcStat[] {
  const out: ProcStat[] = []
  let entries: string[]
  try { entries = readdirSync('/proc') } catch { return out }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const s = readStat(Number(entry))
    if (s) out.push(s)
  }
  return out
}
