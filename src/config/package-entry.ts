import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { exports as packageExports } from 'resolve.exports'

// An extension or filter shipped as an npm package is served from where npm installed it, without
// copying files. Its entry comes from its own package.json: `"resident": { "entry": "…" }` when
// the package says which file is the extension (it may be TypeScript source: Resident bundles it
// like any other), otherwise what Node would load for `import "<name>"` (its "exports" with the
// import conditions, then "main", then index.*).

const NAME = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i
const ENTRY_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs']

/** The folder npm installed package `name` in, seen from `base` (node_modules folders upwards), or null. */
export function findPackageDir(name: string, base: string): string | null {
  for (let d = path.resolve(base); ; d = path.dirname(d)) {
    const dir = path.join(d, 'node_modules', name)
    if (existsSync(path.join(dir, 'package.json'))) return realpathSync(dir)
    if (path.dirname(d) === d) return null
  }
}

/**
 * The entry file of the package `name` installed where `base` can see it. Throws an Error whose
 * message says what is wrong (not a name, not installed, no entry), for the config's problems list.
 */
export function resolvePackageEntry(name: string, base: string): string {
  // A path names a package's folder directly (one not installed yet, or a checkout beside this one).
  const isPath = path.isAbsolute(name) || name.startsWith('./') || name.startsWith('../')
  if (!isPath && !NAME.test(name)) throw new Error(`"${name}" is not an npm package name or a path to a package's folder`)
  const dir = isPath ? (existsSync(path.join(path.resolve(base, name), 'package.json')) ? realpathSync(path.resolve(base, name)) : null) : findPackageDir(name, base)
  if (dir === null) {
    throw new Error(isPath ? `${path.resolve(base, name)} is not a package's folder (no package.json)` : `package "${name}" is not installed where ${base} can see it (npm install ${name})`)
  }
  let pkg: Record<string, unknown>
  try {
    pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>
  } catch (e) {
    throw new Error(`package "${name}": its package.json cannot be read (${(e as Error).message})`)
  }
  const declared = (pkg.resident as { entry?: unknown } | undefined)?.entry
  const candidates: string[] = []
  if (declared !== undefined) {
    if (typeof declared !== 'string') throw new Error(`package "${name}": "resident.entry" in its package.json must be a path`)
    candidates.push(declared)
  } else {
    try {
      const found = pkg.exports !== undefined ? packageExports(pkg, '.', { conditions: ['node', 'import'] }) : undefined
      if (found?.[0]) candidates.push(found[0])
    } catch { /* no "." export: fall back to main */ }
    if (typeof pkg.main === 'string') candidates.push(pkg.main)
    for (const ext of ENTRY_EXTENSIONS) candidates.push(`index${ext}`)
  }
  for (const c of candidates) {
    for (const file of [c, ...ENTRY_EXTENSIONS.map((e) => c + e)]) {
      const abs = path.resolve(dir, file)
      const rel = path.relative(dir, abs)
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue // an entry outside its own package is not one
      try { if (statSync(abs).isFile()) return realpathSync(abs) } catch { /* next */ }
    }
  }
  throw new Error(`package "${name}" (${dir}) has no entry: give its package.json "resident": { "entry": "<file>" }, "exports" or "main"`)
}
