#!/usr/bin/env node
// Runs a TypeScript benchmark: `node bench/run.js <name> [args…]` bundles bench/<name>.ts with esbuild
// (packages stay external) into .bench-tmp/ and runs it with --expose-gc, passing the arguments on.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const [name, ...args] = process.argv.slice(2)
const entry = name && path.join(root, 'bench', `${name}.ts`)
if (!entry || !existsSync(entry)) {
  process.stderr.write(`usage: node bench/run.js <name> [args]   (bench/<name>.ts)\n`)
  process.exit(2)
}
// Two levels below the root, like src/<dir>/ and dist/<dir>/: modules that find package.json at
// `../../package.json` from their own URL find it from the bundle too.
const outdir = path.join(root, '.bench-tmp', name)
mkdirSync(outdir, { recursive: true })
const outfile = path.join(outdir, `${name}.mjs`)
await esbuild.build({
  entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20',
  packages: 'external', sourcemap: 'inline', logLevel: 'warning',
  // The loader's import() hook passes its attributes through a variable on purpose.
  logOverride: { 'unsupported-dynamic-import': 'silent' },
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
})
const r = spawnSync(process.execPath, ['--expose-gc', '--enable-source-maps', outfile, ...args], { stdio: 'inherit', cwd: root })
process.exit(r.status ?? 1)
