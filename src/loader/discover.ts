import { readFileSync, realpathSync, statSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { isModuleName } from '../config/names.ts'

export const ENTRY_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs'] as const

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file)
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
}

function statOrNull(p: string) {
  return statSync(p, { throwIfNoEntry: false }) ?? null
}

/**
 * The entry file of module `name` in `root`: `name.ts|.mts|.js|.mjs|.cjs`, or a folder `name/` with a
 * package.json `main` or an `index.*`. Returns null when there is none, or when the file (after
 * following symlinks) lies outside `root`.
 *
 * Synchronous inside: a request's cold load starts here, and each asynchronous call would wait for
 * a turn of the event loop (behind a GC or another extension's init on a busy server) where the
 * system call itself takes microseconds.
 */
export async function findEntry(root: string, name: string): Promise<string | null> {
  if (!isModuleName(name)) return null
  let realRoot: string
  try { realRoot = realpathSync.native(root) } catch { return null }
  const confine = (candidate: string): string | null => {
    if (!statOrNull(candidate)?.isFile()) return null
    const real = realpathSync.native(candidate)
    return isInside(realRoot, real) ? real : null
  }
  for (const ext of ENTRY_EXTENSIONS) {
    const found = confine(path.join(realRoot, name + ext))
    if (found) return found
  }
  const dir = path.join(realRoot, name)
  if (!statOrNull(dir)?.isDirectory()) return null
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { main?: unknown }
    if (typeof pkg.main === 'string') {
      const main = path.resolve(dir, pkg.main)
      const found = confine(main)
      if (found) return found
      for (const ext of ENTRY_EXTENSIONS) {
        const withExt = confine(main + ext)
        if (withExt) return withExt
      }
    }
  } catch { /* no package.json, or not JSON: fall back to index.* */ }
  for (const ext of ENTRY_EXTENSIONS) {
    const found = confine(path.join(dir, 'index' + ext))
    if (found) return found
  }
  return null
}

/** Every module name in `root` that has an entry, sorted. */
export async function listModules(root: string): Promise<string[]> {
  let entries: string[]
  try { entries = await readdir(root) } catch { return [] }
  const names = new Set<string>()
  for (const e of entries) {
    const ext = ENTRY_EXTENSIONS.find((x) => e.endsWith(x))
    const name = ext ? e.slice(0, -ext.length) : e
    if (isModuleName(name)) names.add(name)
  }
  const found: string[] = []
  for (const name of [...names].sort()) if (await findEntry(root, name)) found.push(name)
  return found
}
