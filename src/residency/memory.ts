import { readFileSync } from 'node:fs'
import v8 from 'node:v8'

/** A cgroup's memory limit and usage (the whole group, not only this process; inactive file cache excluded). */
export interface CgroupMemory {
  version: 1 | 2
  limit: number
  usage: number
}

/** One reading of every memory signal Resident watches. */
export interface MemorySample {
  heapUsed: number
  heapLimit: number
  /** heapUsed + external (ArrayBuffers, Buffers): what an extension's load can grow. */
  jsBytes: number
  rss: number
  /**
   * RSS of the processes the out-of-process modes run for this host (a fastcgi pool's workers, cgi
   * children): the RSS budget covers them too, since evicting their extension returns it.
   */
  processesRss: number
  /** The configured RSS budget, or null. */
  budget: number | null
  cgroup: CgroupMemory | null
  /** The highest usage / limit among the signals, and which signal it is (after any discount). */
  ratio: number
  /** The same without the discount. */
  rawRatio: number
  signal: 'heap' | 'rss' | 'cgroup'
  /** The dominant signal's usage (undiscounted) and limit, in bytes. */
  usage: number
  limit: number
  /** Bytes to free to bring the dominant signal down to `ratio` × its limit. */
  excessOver(ratio: number): number
}

// cgroup v1 writes 9223372036854771712 (page-rounded 2^63) for "no limit"; v2 writes "max".
// Node 20's constrainedMemory() even answers UINT64_MAX: anything this large means none.
const NO_LIMIT = 2 ** 62

function readNumber(file: string): number | undefined {
  let text: string
  try { text = readFileSync(file, 'utf8').trim() } catch { return undefined }
  if (text === 'max') return Infinity
  const n = Number(text)
  if (!Number.isFinite(n)) return undefined
  return n >= NO_LIMIT ? Infinity : n
}

/** Where this process sits in each hierarchy, from /proc/self/cgroup. */
function cgroupPaths(procFile: string): { v2: string | null; v1: string | null } {
  let text = ''
  try { text = readFileSync(procFile, 'utf8') } catch { return { v2: null, v1: null } }
  let v2: string | null = null
  let v1: string | null = null
  for (const line of text.split('\n')) {
    const [, controllers, p] = /^\d+:([^:]*):(.*)$/.exec(line) ?? []
    if (p === undefined) continue
    if (controllers === '') v2 = p
    else if (controllers!.split(',').includes('memory')) v1 = p
  }
  return { v2, v1 }
}

interface CgroupProbe { version: 1 | 2; usageFile: string; limitFiles: string[] }

/**
 * Finds the files once. The effective limit is the smallest one up the tree: a parent can impose it
 * while the leaf says "max". Inside a cgroup namespace the path may not exist under the mount; then
 * the mount root is ours.
 */
function probe(version: 1 | 2, root: string, rel: string, limitFile: string, usageFile: string): CgroupProbe | null {
  let dir = root + (rel === '/' ? '' : rel)
  if (readNumber(`${dir}/${usageFile}`) === undefined) dir = root
  if (readNumber(`${dir}/${usageFile}`) === undefined) return null
  const limitFiles: string[] = []
  for (;;) {
    limitFiles.push(`${dir}/${limitFile}`)
    if (dir === root || dir.length <= root.length) break
    dir = dir.slice(0, dir.lastIndexOf('/'))
  }
  return { version, usageFile: `${limitFiles[0]!.slice(0, limitFiles[0]!.lastIndexOf('/'))}/${usageFile}`, limitFiles }
}

/** Where to look: the real files by default; tests point it at a fixture tree. */
export interface CgroupSources { procFile: string; root: string }
const REAL: CgroupSources = { procFile: '/proc/self/cgroup', root: '/sys/fs/cgroup' }
let realProbes: CgroupProbe[] | undefined

/**
 * Usage minus the inactive file cache (what docker stats and the kubelet call the working set): the
 * raw counters include page cache the kernel drops under pressure, which would keep a host with a
 * busy disk permanently "over" its limit.
 */
function workingSet(p: CgroupProbe, usage: number): number {
  let text: string
  try { text = readFileSync(p.usageFile.slice(0, p.usageFile.lastIndexOf('/')) + '/memory.stat', 'utf8') } catch { return usage }
  const key = p.version === 1 ? 'total_inactive_file' : 'inactive_file'
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text)
  const inactive = m ? Number(m[1]) : 0
  return inactive < usage ? usage - inactive : usage
}

function probeAll(src: CgroupSources): CgroupProbe[] {
  const { v2, v1 } = cgroupPaths(src.procFile)
  return [
    v1 !== null ? probe(1, `${src.root}/memory`, v1, 'memory.limit_in_bytes', 'memory.usage_in_bytes') : null,
    v2 !== null ? probe(2, src.root, v2, 'memory.max', 'memory.current') : null,
  ].filter((p): p is CgroupProbe => p !== null)
}

/**
 * The cgroup memory limit that applies to this process (v1 or v2, the smallest up the tree), or null
 * when none does or not on Linux. "No limit" values (v2 "max", v1's 2^63 rounded down) count as none.
 */
export function readCgroupMemory(src?: CgroupSources): CgroupMemory | null {
  if (!src && process.platform !== 'linux') return null
  const probes = src ? probeAll(src) : (realProbes ??= probeAll(REAL))
  for (const p of probes) {
    let limit = Infinity
    for (const f of p.limitFiles) limit = Math.min(limit, readNumber(f) ?? Infinity)
    if (!Number.isFinite(limit)) continue
    const usage = readNumber(p.usageFile)
    if (usage !== undefined) return { version: p.version, limit, usage: workingSet(p, usage) }
  }
  return null
}

/**
 * Reads heap, RSS and cgroup signals; `budget` is the configured RSS budget (bytes) or null.
 * `discount`: bytes known to be unreferenced but not yet collected, subtracted from every signal.
 */
export function sampleMemory(budget: number | null, withCgroup = true, discount = 0, processesRss = 0): MemorySample {
  const heap = v8.getHeapStatistics()
  const rss = process.memoryUsage.rss()
  const cgroup = withCgroup ? readCgroupMemory() : null
  const signals: Array<{ signal: MemorySample['signal']; usage: number; limit: number }> = [
    { signal: 'heap', usage: heap.used_heap_size, limit: heap.heap_size_limit },
  ]
  if (budget !== null && budget > 0) signals.push({ signal: 'rss', usage: rss + processesRss, limit: budget })
  if (cgroup) signals.push({ signal: 'cgroup', usage: cgroup.usage, limit: cgroup.limit })
  let top = signals[0]!
  for (const s of signals) if (s.usage / s.limit > top.usage / top.limit) top = s
  const usage = Math.max(0, top.usage - discount)
  return {
    heapUsed: heap.used_heap_size,
    heapLimit: heap.heap_size_limit,
    jsBytes: heap.used_heap_size + heap.external_memory,
    rss,
    processesRss,
    budget,
    cgroup,
    ratio: usage / top.limit,
    rawRatio: top.usage / top.limit,
    signal: top.signal,
    usage: top.usage,
    limit: top.limit,
    excessOver: (ratio) => Math.max(0, usage - ratio * top.limit),
  }
}

/**
 * The same sample with `garbage` (bytes of retired generations not collected yet) taken off its
 * dominant signal: the ratio admission and eviction go by.
 */
export function discounted(s: MemorySample, garbage: number): MemorySample {
  const usage = Math.max(0, s.usage - garbage)
  return { ...s, ratio: usage / s.limit, excessOver: (ratio) => Math.max(0, usage - ratio * s.limit) }
}

/** Heap used + external (Buffers): cheaper than process.memoryUsage(), which also reads RSS. */
export function jsBytes(): number {
  const h = v8.getHeapStatistics()
  return h.used_heap_size + h.external_memory
}
