import path from 'node:path'
import { SourceMap } from 'node:module'
import type { SourceMapPayload } from './build.ts'

// Node 20 does not apply source maps to vm-compiled code (not even with --enable-source-maps), so
// Resident keeps each generation's map and rewrites the frames of errors that pass through it.

// The SourceMap (which decodes every mapping) is made when a stack first needs it: most code never
// throws, and a process per request (the cgi mode) would decode it on every request.
interface Mapped { payload: SourceMapPayload | null; map: SourceMap | null; dir: string }
const maps = new Map<string, Mapped>()

/** Remembers the map of code compiled under `filename`; returns a function that forgets it. */
export function registerSourceMap(filename: string, payload: SourceMapPayload, dir: string): () => void {
  maps.set(filename, { payload, map: null, dir })
  return () => { maps.delete(filename) }
}

const FRAME = /([^\s()]+\?gen=\d+):(\d+):(\d+)/g

/** The stack with every frame in registered generated code replaced by its original file:line:col. */
export function mapStack(stack: string): string {
  if (maps.size === 0 || !stack.includes('?gen=')) return stack
  return stack.replace(FRAME, (whole, file: string, line: string, col: string) => {
    const m = maps.get(file)
    if (!m) return whole
    if (m.map === null) {
      m.map = new SourceMap(m.payload as unknown as ConstructorParameters<typeof SourceMap>[0])
      m.payload = null
    }
    const e = m.map.findEntry(Number(line) - 1, Number(col) - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number }
    if (e.originalSource === undefined || e.originalLine === undefined || e.originalColumn === undefined) return whole
    const source = path.resolve(m.dir, e.originalSource)
    return `${source}:${e.originalLine + 1}:${e.originalColumn + 1}`
  })
}

/** Rewrites `error.stack` in place (once) and returns the error. */
export function mapErrorStack<T>(error: T): T {
  if (error instanceof Error && typeof error.stack === 'string' && !(error as { [MAPPED]?: true })[MAPPED]) {
    try {
      error.stack = mapStack(error.stack)
      Object.defineProperty(error, MAPPED, { value: true })
    } catch { /* frozen or exotic error: leave its stack alone */ }
  }
  return error
}
const MAPPED = Symbol('resident.stackMapped')
