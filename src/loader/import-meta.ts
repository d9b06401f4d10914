import { existsSync, readFileSync } from 'node:fs'
import { createRequire, isBuiltin } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { exports as packageExports } from 'resolve.exports'

// What `import.meta` and a runtime `import()` need inside an extension, resolved from the file
// that wrote them, as Node would resolve them for a module at that place. (Node 20 can resolve from
// another module's place only behind a flag, so the host does it: CommonJS resolution first, then
// a package's "exports" read with the "import" condition for packages that are ESM only.)

export interface ImportMeta {
  url: string
  filename: string
  dirname: string
  resolve(specifier: string): string
}

/** The `import.meta` of the extension file at `url`. */
export function importMetaOf(url: string): ImportMeta {
  const filename = fileURLToPath(url)
  return {
    url,
    filename,
    dirname: path.dirname(filename),
    resolve: (specifier: string) => resolveSpecifier(specifier, filename),
  }
}

const URL_SCHEME = /^[a-z][a-z0-9+.-]+:/i
const BARE = /^(@[^/]+\/[^/]+|[^./][^/]*)(\/.*)?$/

/** The URL `specifier` names when imported from the file `from` (an absolute path). */
export function resolveSpecifier(specifier: string, from: string): string {
  if (isBuiltin(specifier)) return specifier.startsWith('node:') ? specifier : `node:${specifier}`
  if (URL_SCHEME.test(specifier)) return new URL(specifier).href
  if (path.isAbsolute(specifier)) return pathToFileURL(specifier).href
  if (specifier.startsWith('./') || specifier.startsWith('../')) return new URL(specifier, pathToFileURL(from)).href
  try {
    return pathToFileURL(createRequire(from).resolve(specifier)).href
  } catch (e) {
    const esm = resolveEsmOnly(specifier, path.dirname(from))
    if (esm !== null) return esm
    const err = new Error(`cannot resolve '${specifier}' from ${from}: is it in the dependencies of the extension's project (npm install ${specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')})?`, { cause: e })
    ;(err as { code?: string }).code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
}

function resolveEsmOnly(specifier: string, dir: string): string | null {
  const m = BARE.exec(specifier)
  if (!m) return null
  const name = m[1]!
  for (let d = dir; ; d = path.dirname(d)) {
    const pkgDir = path.join(d, 'node_modules', name)
    const manifest = path.join(pkgDir, 'package.json')
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>
      const found = packageExports(pkg, specifier.slice(name.length) || '.', { conditions: ['node', 'import'] })
      return found?.[0] ? pathToFileURL(path.join(pkgDir, found[0])).href : null
    }
    if (path.dirname(d) === d) return null
  }
}
