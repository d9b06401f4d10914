import path from 'node:path'
import * as esbuild from 'esbuild'

export interface BuildOutput {
  code: string
  /** The source map as esbuild wrote it (sources relative to the entry's folder). */
  map: SourceMapPayload
  /** Absolute paths of every local file the build read: the watch set. */
  inputs: string[]
}

export interface SourceMapPayload {
  version: number; sources: string[]; sourcesContent?: string[]; names: string[]; mappings: string; file?: string; sourceRoot?: string
}

// esbuild's service is a child process (a Go binary: ≈ 12 MB RSS, more after large builds, and a
// ping to this process every second) that esbuild starts with the first build and keeps. Resident
// stops it once no build has run for `unload.esbuildIdle`; the next build starts it again (≈ 6 ms).
// One service per process, so the setting is too: the last server built sets it.
let idleStopMs = 30_000
let building = 0
let running = false
let idleTimer: NodeJS.Timeout | null = null

/** Sets how long the esbuild service may stay idle before it is stopped (0 = never stop it). */
export function setEsbuildIdle(ms: number): void {
  idleStopMs = ms
  if (building === 0) scheduleStop()
}

function cancelStop(): void {
  if (idleTimer !== null) clearTimeout(idleTimer)
  idleTimer = null
}

function scheduleStop(): void {
  cancelStop()
  if (!running || idleStopMs <= 0) return
  idleTimer = setTimeout(() => {
    idleTimer = null
    if (building > 0) return
    running = false
    void esbuild.stop()
  }, idleStopMs)
  idleTimer.unref()
}

// esbuild's helper that defines an ES module's exports walks them with `for…in`, which would also
// define every key someone added to Object.prototype (and fail on it): walk own keys instead.
const EXPORT_HELPER = 'var __export = (target, all) => {\n  for (var name in all)\n'
const OWN_EXPORT_HELPER = 'var __export = (target, all) => {\n  for (var name of Object.keys(all))\n'

function ownExports(code: string): string {
  const at = code.indexOf(EXPORT_HELPER)
  return at === -1 ? code : code.slice(0, at) + OWN_EXPORT_HELPER + code.slice(at + EXPORT_HELPER.length)
}

/** A build failure with esbuild's messages kept for a readable report. */
export class BuildError extends Error {
  readonly messages: esbuild.Message[]
  constructor(message: string, messages: esbuild.Message[]) {
    super(message)
    this.name = 'BuildError'
    this.messages = messages
  }
}

/** "file:line:col: text" for each message, as a compiler prints them. */
export function formatMessages(messages: esbuild.Message[]): string {
  return messages.map((m) => {
    const at = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : ''
    const frame = m.location?.lineText ? `\n    ${m.location.lineText}\n    ${' '.repeat(m.location.column)}^` : ''
    return `${at}${m.text}${frame}`
  }).join('\n')
}

/**
 * Bundles one extension or filter entry into CommonJS: its own files inlined, packages left as
 * `require()` so they load once through Node, `resident` always external so every extension gets
 * the host's own SDK.
 */
export async function buildEntry(entry: string): Promise<BuildOutput> {
  const dir = path.dirname(entry)
  let result: esbuild.BuildResult<{ write: false; metafile: true }>
  building++
  running = true
  cancelStop()
  try {
    // A prototype-less options object: esbuild walks its options with `for…in` and refuses any
    // key it does not know, so one polluted Object.prototype would fail every later build.
    result = await esbuild.build(Object.assign(Object.create(null) as esbuild.BuildOptions, {
      entryPoints: [entry],
      absWorkingDir: dir,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      packages: 'external',
      external: ['resident-host', 'resident-host/*'],
      sourcemap: 'external',
      sourcesContent: true,
      outfile: path.join(dir, '__resident_bundle.js'),
      logLevel: 'silent',
      keepNames: true,
    }) as esbuild.BuildOptions & { write: false; metafile: true })
  } catch (e) {
    const failure = e as esbuild.BuildFailure
    if (Array.isArray(failure.errors)) {
      throw new BuildError(`build failed:\n${formatMessages(failure.errors)}`, failure.errors)
    }
    throw e
  } finally {
    if (--building === 0) scheduleStop()
  }
  const meta = result.warnings.find((w) => w.id === 'empty-import-meta')
  if (meta) {
    throw new BuildError(`build failed:\n${formatMessages([{ ...meta, text: 'import.meta is not available to in-process extensions; use __dirname, __filename or this.host.dir' }])}`, [meta])
  }
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))
  const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'))
  if (!js || !map) throw new Error(`esbuild produced no output for ${entry}`)
  return {
    code: ownExports(js.text),
    map: JSON.parse(map.text) as SourceMapPayload,
    inputs: Object.keys(result.metafile.inputs).map((p) => path.resolve(dir, p)),
  }
}
