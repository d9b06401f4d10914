import path from 'node:path'
import * as esbuild from 'esbuild'
import { ownData } from '../own.ts'
import { toFunctionBody, type FunctionShape } from './module-shape.ts'
import { externalPackages } from './resolve-plugin.ts'

export interface BuildOutput {
  /** The bundle, shaped as the body of an async function (module-shape.ts). */
  shape: FunctionShape
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

// The entry is reached through a stub that hands its namespace to the host: the bundle then has
// no export statement, and a default export, named exports and `export * from` all arrive as one
// namespace object.
const ENTRY_STUB = '__resident_entry__'

/**
 * Bundles one extension or filter entry as an ES module: its own files (and JSON) inlined,
 * packages resolved and left for Node to load once, `resident-host` always external so every
 * extension gets the host's own SDK. The result is shaped to run as an async function body.
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
    result = await esbuild.build(ownData({
      stdin: {
        contents: `import * as m from ${JSON.stringify('./' + path.basename(entry))}; __rexport(m)`,
        resolveDir: dir,
        sourcefile: ENTRY_STUB,
        loader: 'js',
      },
      absWorkingDir: dir,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      plugins: [externalPackages()],
      sourcemap: 'external',
      sourcesContent: true,
      outfile: path.join(dir, '__resident_bundle.js'),
      logLevel: 'silent',
      keepNames: true,
    }) as esbuild.BuildOptions & { write: false; metafile: true })
  } catch (e) {
    const failure = e as esbuild.BuildFailure
    if (Array.isArray(failure.errors)) {
      for (const m of failure.errors) {
        const missing = /^Could not resolve "((@[^/"]+\/)?[^./"][^/"]*)/.exec(m.text)
        if (missing) m.text += ` (is it installed? npm install ${missing[1]} in the extension's project)`
      }
      throw new BuildError(`build failed:\n${formatMessages(failure.errors)}`, failure.errors)
    }
    throw e
  } finally {
    if (--building === 0) scheduleStop()
  }
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))
  const mapFile = result.outputFiles.find((f) => f.path.endsWith('.js.map'))
  if (!js || !mapFile) throw new Error(`esbuild produced no output for ${entry}`)
  const map = JSON.parse(mapFile.text) as SourceMapPayload
  return {
    shape: await toFunctionBody(ownExports(js.text), map, dir),
    map,
    inputs: Object.keys(result.metafile.inputs).filter((p) => p !== ENTRY_STUB && p !== '<stdin>').map((p) => path.resolve(dir, p)),
  }
}
