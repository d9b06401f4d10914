import { lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { BuildOutput } from './build.ts'

interface CacheFile extends BuildOutput {
  /** The entry it is the bundle of (the file name is only a hash of it). */
  entry: string
  /** [path, ctimeMs, size] of every input when the bundle was built. */
  stamps: Stamp[]
}

/**
 * The folder bundles are cached in: `RESIDENT_CACHE_DIR`, or a folder of this user's own under
 * the temporary folder. Null when it is not safely ours (made by another user, or writable by
 * others): a bundle read from there would be code anyone could have written.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const dir = env.RESIDENT_CACHE_DIR || path.join(tmpdir(), `resident-cache-${process.getuid?.() ?? 'user'}`)
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const st = lstatSync(dir)
    if (!st.isDirectory()) return null
    if (process.getuid && st.uid !== process.getuid()) return null
    if ((st.mode & 0o022) !== 0) return null
    return dir
  } catch {
    return null
  }
}

/**
 * The cache file's name: FNV-1a of the entry path. Not node:crypto, whose loading costs a process
 * per request a few ms; a collision only makes a miss, since the file names its entry.
 */
function cacheFile(dir: string, entry: string): string {
  let a = 0x811c9dc5
  let b = 0x01000193
  for (let i = 0; i < entry.length; i++) {
    const c = entry.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193) >>> 0
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0
  }
  return path.join(dir, `${path.basename(entry).replace(/[^\w.-]/g, '_')}-${a.toString(16)}${b.toString(16)}.json`)
}

// The change time, not the modification time: a write always moves it and utimes() cannot set it back.
type Stamp = [path: string, ctimeMs: number, size: number]

/**
 * Each input's stamp, or null when one was modified since shortly before `startedAt` (the build
 * may have read it half-written or before the change: caching it would serve stale code). The
 * margin covers the file system's coarse clock, which can lag the wall clock by a tick.
 */
function stampsOf(inputs: readonly string[], startedAt: number): Stamp[] | null {
  const stamps: Stamp[] = []
  for (const file of inputs) {
    const st = statSync(file)
    if (st.ctimeMs >= startedAt - STAMP_MARGIN_MS) return null
    stamps.push([file, st.ctimeMs, st.size])
  }
  return stamps
}
const STAMP_MARGIN_MS = 20

function unchanged(stamps: readonly Stamp[]): boolean {
  for (const [file, ctime, size] of stamps) {
    try {
      const st = statSync(file)
      if (st.ctimeMs !== ctime || st.size !== size) return false
    } catch {
      return false
    }
  }
  return true
}

/** The cached bundle of `entry` if none of its inputs changed since it was built; null otherwise. */
export function readCachedBuild(dir: string, entry: string): BuildOutput | null {
  let cached: CacheFile
  try {
    cached = JSON.parse(readFileSync(cacheFile(dir, entry), 'utf8')) as CacheFile
  } catch {
    return null
  }
  if (cached.entry !== entry) return null
  // A file written by a version of Resident that shaped bundles differently is a miss.
  if (typeof cached.shape?.body !== 'string' || !Array.isArray(cached.stamps)) return null
  if (!unchanged(cached.stamps)) return null
  return { shape: cached.shape, map: cached.map, inputs: cached.inputs }
}

/**
 * Writes a bundle built from `startedAt` to the cache (atomically: a reader sees the old file or
 * the new one); not when an input changed since (the next read builds again).
 */
export function writeCachedBuild(dir: string, entry: string, build: BuildOutput, startedAt: number): void {
  const stamps = stampsOf(build.inputs, startedAt)
  if (stamps === null) return
  const target = cacheFile(dir, entry)
  const tmp = `${target}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ entry, ...build, stamps } satisfies CacheFile), { mode: 0o600 })
  renameSync(tmp, target)
}

/**
 * The bundle of `entry`, from the cache when its inputs are unchanged, otherwise built with
 * esbuild (loaded only then: a process per request must not pay for it) and cached.
 */
export async function cachedBuild(entry: string, dir: string | null = defaultCacheDir()): Promise<BuildOutput> {
  if (dir !== null) {
    const hit = readCachedBuild(dir, entry)
    if (hit !== null) return hit
  }
  // Taken before anything is awaited: an input written from here on is never trusted.
  const startedAt = Date.now()
  const { buildEntry } = await import('./build.ts')
  const output = await buildEntry(entry)
  if (dir !== null) {
    try { writeCachedBuild(dir, entry, output, startedAt) } catch { /* a cache that cannot be written is only slower */ }
  }
  return output
}
