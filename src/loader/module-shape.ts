import path from 'node:path'
import { SourceMap } from 'node:module'
import { pathToFileURL } from 'node:url'
import { init, parse } from 'es-module-lexer'
import type { SourceMapPayload } from './build.ts'

// An extension is bundled as an ES module and run as the body of an async function compiled by
// vm, not as a module record: Node keeps every module record for the life of the process, while a
// function is collected with its generation. What an ES module can say that a function body
// cannot is rewritten here, in place, keeping every line where it was so the source map holds:
// - a static `import` of a package becomes an awaited `__rimp()` in the prologue (imports are
//   evaluated before the body, as in a module);
// - `import(` becomes `__rimp(`, the host's import, resolved from the extension's own folder;
// - `import.meta` becomes the meta object of the file it was written in (found through the map).
// Top-level `await` needs nothing: the body is an async function's.

export interface FunctionShape {
  /** Code to run before the body (on the wrapper's line): the hoisted imports and meta objects. */
  prologue: string
  /** The bundle with its module syntax rewritten, the same number of lines. */
  body: string
}

const IMPORT_CLAUSE = /^import\s*([\s\S]*?)\s*from\s*["'][^"']*["']\s*;?$/
const STATIC = 1
const DYNAMIC = 2
const META = 3

/** Turns an esbuild ESM bundle into an async function body (see above). */
export async function toFunctionBody(code: string, map: SourceMapPayload, dir: string): Promise<FunctionShape> {
  await init
  const [imports, exports] = parse(code)
  if (exports.length > 0) throw new Error('internal: the bundle has export statements')
  const prologue: string[] = []
  const metaFiles = new Map<string, string>()
  let sourceMap: SourceMap | null = null
  let lineStarts: number[] | null = null
  const edits: Array<{ s: number; e: number; text: string }> = []
  for (const imp of imports) {
    if (imp.t === STATIC) {
      const statement = code.slice(imp.ss, imp.se)
      prologue.push(bindingsOf(statement, JSON.stringify(imp.n)))
      edits.push({ s: imp.ss, e: imp.se, text: statement.replace(/[^\n]/g, ' ') })
    } else if (imp.t === DYNAMIC) {
      edits.push({ s: imp.ss, e: imp.ss + 6, text: '__rimp' })
    } else if (imp.t === META) {
      sourceMap ??= new SourceMap(map as unknown as ConstructorParameters<typeof SourceMap>[0])
      lineStarts ??= linesOf(code)
      const file = originalFile(sourceMap, lineStarts, imp.ss, dir)
      let id = metaFiles.get(file)
      if (id === undefined) {
        id = `__rm_${String(metaFiles.size).padStart(6, '0')}`
        metaFiles.set(file, id)
        prologue.push(`const ${id}=__rmeta(${JSON.stringify(pathToFileURL(file).href)});`)
      }
      edits.push({ s: imp.ss, e: imp.se, text: id })
    } else {
      throw new Error(`source and defer phase imports are not supported (at ${code.slice(imp.ss, imp.se)})`)
    }
  }
  edits.sort((a, b) => a.s - b.s)
  let body = ''
  let at = 0
  for (const edit of edits) {
    body += code.slice(at, edit.s) + edit.text
    at = edit.e
  }
  body += code.slice(at)
  return { prologue: prologue.join(''), body }
}

/** `import X, { a as b } from "m"` → `const {default:X,a:b}=await __rimp("m");` */
function bindingsOf(statement: string, specifier: string): string {
  const load = `await __rimp(${specifier})`
  const clause = IMPORT_CLAUSE.exec(statement.trim())?.[1]
  if (clause === undefined) return `${load};` // import "m" (for its side effects)
  const parts: string[] = []
  let namespace: string | null = null
  const named = /\{([\s\S]*)\}/.exec(clause)?.[1]
  const rest = clause.replace(/\{[\s\S]*\}/, '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const r of rest) {
    const ns = /^\*\s*as\s+(\S+)$/.exec(r)
    if (ns) namespace = ns[1]!
    else parts.push(`default:${r}`)
  }
  for (const item of (named ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\S+)\s+as\s+(\S+)$/.exec(item)
    parts.push(m ? `${m[1]}:${m[2]}` : item)
  }
  if (namespace !== null) {
    return `const ${namespace}=${load};` + (parts.length > 0 ? `const {${parts.join(',')}}=${namespace};` : '')
  }
  return `const {${parts.join(',')}}=${load};`
}

function linesOf(code: string): number[] {
  const starts = [0]
  for (let i = code.indexOf('\n'); i !== -1; i = code.indexOf('\n', i + 1)) starts.push(i + 1)
  return starts
}

function originalFile(map: SourceMap, lineStarts: number[], offset: number, dir: string): string {
  let lo = 0
  let hi = lineStarts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (lineStarts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  const e = map.findEntry(lo, offset - lineStarts[lo]!) as { originalSource?: string }
  if (e.originalSource === undefined) throw new Error('internal: import.meta outside any source file')
  return path.resolve(dir, e.originalSource)
}
