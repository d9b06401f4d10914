import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The CGI runner as one CommonJS file in the bundle cache. `node <file> <entry>` is what the cgi
 * mode starts per request: one file to read and compile instead of the ESM graph under dist/cli
 * (Node's ESM loader alone costs a process several ms). esbuild stays a `require` of its absolute
 * path, reached only when an extension's cached bundle is stale. Rebuilt when any source of the
 * runner changes (stamps of every input, as for extension bundles).
 */
export async function ensureRunnerBundle(cacheDir: string, entry: string = runnerEntry()): Promise<string> {
  // One manifest per runner source: the cache is shared by every checkout and installation of
  // Resident a user runs, and one keyed only by src/dist would hand out another tree's runner
  // (its stamps unchanged) to this one.
  const tree = createHash('sha256').update(entry).digest('hex').slice(0, 12)
  const manifest = path.join(cacheDir, `runner-${entry.endsWith('.ts') ? 'src' : 'dist'}-${tree}.json`)
  let previous: string | null = null
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { file: string; stamps: Array<[string, number, number]> }
    if (existsSync(m.file) && m.stamps.every(([f, mtime, size]) => { try { const st = statSync(f); return st.mtimeMs === mtime && st.size === size } catch { return false } })) return m.file
    previous = m.file
  } catch { /* no manifest yet */ }
  const esbuild = await import('esbuild')
  const esbuildPath = createRequire(import.meta.url).resolve('esbuild')
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: path.dirname(entry),
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Keep import() as it is: an extension's dynamic import of an ES module must not become require().
    supported: { 'dynamic-import': true },
    logLevel: 'silent',
    plugins: [{
      name: 'esbuild-by-path',
      setup(b) { b.onResolve({ filter: /^esbuild$/ }, () => ({ path: esbuildPath, external: true })) },
    }],
  })
  const code = result.outputFiles[0]!.text
  const file = path.join(cacheDir, `runner-${process.pid}-${Date.now().toString(36)}.cjs`)
  writeFileSync(file, code, { mode: 0o600 })
  const stamps = Object.keys(result.metafile.inputs).map((p) => {
    const abs = path.resolve(path.dirname(entry), p)
    const st = statSync(abs)
    return [abs, st.mtimeMs, st.size] as [string, number, number]
  })
  const tmp = `${manifest}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ file, stamps }), { mode: 0o600 })
  renameSync(tmp, manifest)
  // A process may still be starting from the old file; unlinking it leaves that one its copy.
  if (previous !== null && previous !== file) rmSync(previous, { force: true })
  return file
}

/** This installation's runner: src/ (tests, TypeScript) or dist/ (the package, JavaScript). */
function runnerEntry(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const ts = path.resolve(here, '../../cli/cgi-runner.ts')
  return existsSync(ts) ? ts : path.resolve(here, '../../cli/cgi-runner.js')
}
