import { lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { BuildOutput } from './build.ts'

interface CacheFile extends BuildOutput {
  /** The entry it is the bundle of (the file name is only a hash of it). */
  entry: string
  /** [path, mtimeMs, size] of every input when the bundle was built. */
  stamps: Array<[string, number, number]>
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
  for (const [file, mtime, size] of cached.stamps) {
    try {
      const st = statSync(file)
      if (st.mtimeMs !== mtime || st.size !== size) return null
    } catch {
      return null
    }
  }
  return { shape: cached.shape, map: cached.map, inputs: cached.inputs }
}

/** Writes a bundle to the cache (atomically: a reader sees the old file or the new one). */
export function writeCachedBuild(dir: string, entry: string, build: BuildOutput): void {
  const stamps: Array<[string, number, number]> = []
  for (const file of build.inputs) {
    const st = statSync(file)
    stamps.push([file, st.mtimeMs, st.size])
  }
  const target = cacheFile(dir, entry)
  const tmp = `${target}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ entry, ...build, stamps } satisfies CacheFile), { mode: 0o600 })
  renameSync(tmp, target)
}

/**
 * The bundle of `entry`, from the cache when its inputs are unchanged, otherwise built with
 * esbuild (loaded only then: a process per request must not pay for it) and cached. An input
 * changed while it was being built is caught on the next read, since stamps are taken after.
 */
export async function cachedBuild(entry: string, dir: string | null = defaultCacheDir()): Promise<BuildOutput> {
  if (dir !== null) {
    const hit = readCachedBuild(dir, entry)
    if (hit !== null) return hit
  }
  const { buildEntry } = await import('./build.ts')
  const build = await buildEntry(entry)
  if (dir !== null) {
    try { writeCachedBuild(dir, entry, build) } catch { /* a cache that cannot be written is only slower */ }
  }
  return build
}
