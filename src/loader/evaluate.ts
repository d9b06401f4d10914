import { createRequire } from 'node:module'
import path from 'node:path'
import vm from 'node:vm'
import { importMetaOf, resolveSpecifier } from './import-meta.ts'
import type { FunctionShape } from './module-shape.ts'
import { guardedProcess, guardedProcessModule, isProcessModule } from './process-guard.ts'

export interface EvaluateOptions {
  /** The real entry file: `require`, `__filename` and `__dirname` are relative to it. */
  entry: string
  /** The name the code is compiled under; unique per generation, it shows in raw stack frames. */
  filename: string
  /** What importing `resident-host` gives inside the code: the host's own SDK, whatever copy the author installed. */
  sdk: object
}

// A file of the extension's own reached by an import() the build could not follow (a variable
// path) would load through Node's module loader: once for the life of the process (never reloaded
// on save, never collected), and not at all when it is TypeScript. Refused, saying what works.
function notBundled(specifier: string, entry: string): Error {
  const e = new Error(`import(${JSON.stringify(specifier)}) in ${entry}: the path is computed at run time, so the build could not include the file. ` +
    'Write the path as a string literal, or as a template literal with a fixed folder (import(`./locales/${lang}.json`)), so it is bundled and reloaded with the extension.')
  ;(e as { code?: string }).code = 'ERR_RESIDENT_IMPORT_NOT_BUNDLED'
  return e
}

// The cgi mode's runner loader (modes/cgi/runner-bundle.ts) compiles the bundle holding this file
// with a V8 code cache, and on Node 20 code compiled from a code cache loses vm's dynamic-import
// callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING). The loader hands in an import() of its own
// under this symbol; it is taken once, when this module initialises, before any extension code runs.
const IMPORT_HOOK = Symbol.for('resident.import')
type NativeImport = (specifier: string, attributes?: ImportCallOptions) => Promise<unknown>
const nativeImport: NativeImport = (() => {
  const g = globalThis as Record<symbol, unknown>
  const hook = g[IMPORT_HOOK] as NativeImport | undefined
  delete g[IMPORT_HOOK]
  return hook ?? ((specifier, attributes) => import(specifier, attributes))
})()

// `process` is a parameter too, so the module's own code sees the guarded one (process-guard.ts);
// what it imports or requires gets the real one.
const PARAMS = '__rimp,__rmeta,__rexport,require,module,exports,__filename,__dirname,process'

/**
 * Runs a bundle shaped as an async function body (module-shape.ts) in the main context and
 * resolves with the entry's namespace. Dropping every reference to the result lets V8 collect the
 * code (unlike `import()`, which keeps every version for the life of the process). Packages and
 * builtins come through Node's own `import()`, once per process, shared by every generation.
 */
export async function evaluateBundle(shape: FunctionShape, options: EvaluateOptions): Promise<Record<string, unknown>> {
  const base = createRequire(options.entry)
  // The process module, however it is named, is the guarded process for the extension's own code.
  const req = ((id: string) => (id === 'resident-host' ? options.sdk : isProcessModule(id) ? guardedProcess : base(id))) as NodeJS.Require
  req.resolve = base.resolve
  req.cache = base.cache
  const rimp = (specifier: unknown, attributes?: ImportCallOptions): Promise<unknown> => {
    const id = String(specifier)
    if (id === 'resident-host') return Promise.resolve(options.sdk)
    if (isProcessModule(id)) return Promise.resolve(guardedProcessModule)
    // The host's own subpaths (resident-host/testing) resolve by the package's name from here.
    if (id.startsWith('resident-host/')) return nativeImport(id)
    try {
      const url = resolveSpecifier(id, options.entry)
      if (url.startsWith('file:') && !url.includes('/node_modules/')) throw notBundled(id, options.entry)
      return nativeImport(url, attributes)
    } catch (e) {
      return Promise.reject(e)
    }
  }
  // The wrapper is line 0 (lineOffset -1), so the body's lines are the bundle's and its map holds.
  const script = new vm.Script(`(async function(${PARAMS}){"use strict";${shape.prologue}\n${shape.body}\n})`, {
    filename: options.filename,
    lineOffset: -1,
  })
  const fn = script.runInThisContext() as (...args: unknown[]) => Promise<void>
  let namespace: Record<string, unknown> | null = null
  const module = { exports: {} as Record<string, unknown> }
  await fn.call(undefined, rimp, importMetaOf, (ns: Record<string, unknown>) => { namespace = ns }, req, module, module.exports, options.entry, path.dirname(options.entry), guardedProcess)
  if (namespace === null) throw new Error(`internal: ${options.entry} ran without exporting`)
  return namespace
}
