import { isBuiltin } from 'node:module'
import { pathToFileURL } from 'node:url'
import type * as esbuild from 'esbuild'
import { ownData } from '../own.ts'

// Packages are not bundled: they load once through Node and are shared by every generation (a
// package is not reloaded on save, and a per-generation copy would be a per-generation leak). The
// build resolves each one from the importing file, with the conditions of the import's kind (an
// ESM-only package's "import" export, a CommonJS package's "require"), and leaves an absolute
// file URL (for `import`) or path (for `require`) that the host can load without resolving again.
// JSON is data, not code: it is bundled wherever it comes from.

const SDK = /^resident-host(\/.*)?$/
// The SDK's name before it was published: on npm that name belongs to someone else.
const OLD_NAME = /^resident(\/.*)?$/
const RELATIVE = /^(\.{1,2}(\/|$)|\/)/

// esbuild checks every object it is handed with `for…in`: each one is prototype-less, so a
// polluted Object.prototype cannot fail the build (see own.ts).
const bare = <T>(o: T): T => ownData(o) as T

/** Resolves bare specifiers at build time; keeps builtins and the SDK as they are. */
export function externalPackages(): esbuild.Plugin {
  return bare({
    name: 'resident-packages',
    setup(build: esbuild.PluginBuild) {
      build.onResolve(bare({ filter: /.*/ }), async (args) => bare(await resolveOne(build, args)))
    },
  })
}

async function resolveOne(build: esbuild.PluginBuild, args: esbuild.OnResolveArgs): Promise<esbuild.OnResolveResult | undefined> {
  if (args.pluginData === SKIP || RELATIVE.test(args.path) || args.kind === 'entry-point') return undefined
  if (SDK.test(args.path)) return { path: args.path, external: true }
  if (OLD_NAME.test(args.path)) {
    return { errors: [{ text: `"${args.path}" is not Resident's SDK (on npm, "resident" is an unrelated package): import from "resident-host" instead` }] }
  }
  if (isBuiltin(args.path)) return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, external: true }
  if (/^[a-z][a-z0-9+.-]+:/i.test(args.path)) return { path: args.path, external: true }
  const found = await build.resolve(args.path, bare({ kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: SKIP }))
  if (found.errors.length > 0) return { errors: found.errors }
  if (found.external || found.path.endsWith('.json')) return { path: found.path, namespace: found.namespace, external: found.external }
  const required = args.kind === 'require-call' || args.kind === 'require-resolve'
  return { path: required ? found.path : pathToFileURL(found.path).href, external: true }
}
const SKIP = Symbol('resident.resolved')
