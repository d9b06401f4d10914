import { realpath, readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { isModuleName } from '../config/names.ts'

export const ENTRY_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs'] as const

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file)
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
}

async function statOrNull(p: string) {
  try { return await stat(p) } catch { return null }
}

/**
 * The entry file of module `name` in `root`: `name.ts|.mts|.js|.mjs|.cjs`, or a folder `name/` with a
 * package.json `main` or an `index.*`. Returns null when there is none, or when the file (after
 * following symlinks) lies outside `root`.
 */
export async function findEntry(root: string, name: string): Promise<string | null> {
  if (!isModuleName(name)) return null
  let realRoot: string
  try { realRoot = await realpath(root) } catch { return null }
  const confine = async (candidate: string): Promise<string | null> => {
    const s = await statOrNull(candidate)
    if (!s?.isFile()) return null
    const real = await realpath(candidate)
    return isInside(realRoot, real) ? real : null
  }
  for (const ext of ENTRY_EXTENSIONS) {
    const found = await confine(path.join(realRoot, name + ext))
    if (found) return found
  }
  const dir = path.join(realRoot, name)
  if (!(await statOrNull(dir))?.isDirectory()) return null
  try {
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { main?: unknown }
    if (typeof pkg.main === 'string') {
      const main = path.resolve(dir, pkg.main)
      const found = await confine(main)
      if (found) return found
      for (const ext of ENTRY_EXTENSIONS) {
        const withExt = await confine(main + ext)
        if (withExt) return withExt
      }
    }
  } catch { /* no package.json, or not JSON: fall back to index.* */ }
  for (const ext of ENTRY_EXTENSIONS) {
    const found = await confine(path.join(dir, 'index' + ext))
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
