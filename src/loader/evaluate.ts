import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import vm from 'node:vm'
import { guardedProcess } from './process-guard.ts'

export interface EvaluateOptions {
  /** The real entry file: `require`, `__filename` and `__dirname` are relative to it. */
  entry: string
  /** The name the code is compiled under; unique per generation, it shows in raw stack frames. */
  filename: string
  /** What `require('resident-host')` returns inside the code: the host's own SDK, whatever copy the author installed. */
  sdk: unknown
}

/**
 * Evaluates a CommonJS bundle as a function in the main context and returns its `module.exports`.
 * Dropping every reference to the result lets V8 collect the code (unlike `import()`, which keeps
 * every version for the life of the process).
 */
export function evaluateBundle(code: string, options: EvaluateOptions): unknown {
  const base = createRequire(options.entry)
  const req = ((id: string) => (id === 'resident-host' ? options.sdk : base(id))) as NodeJS.Require
  req.resolve = base.resolve
  req.cache = base.cache
  // `process` is a parameter too, so the module's own code sees the guarded one (process-guard.ts);
  // what it require()s gets the real one.
  const fn = vm.compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname', 'process'], {
    filename: options.filename,
    importModuleDynamically: (async (specifier: string) => {
      // Resolve against the extension's folder, so its own node_modules are found.
      let target = specifier
      try { target = pathToFileURL(base.resolve(specifier)).href } catch { /* ESM-only export map or a URL */ }
      return import(target)
    }) as never,
  })
  const module = { exports: {} as Record<string, unknown> }
  fn.call(module.exports, module.exports, req, module, options.entry, path.dirname(options.entry), guardedProcess)
  return module.exports
}
