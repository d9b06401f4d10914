import { accessSync, constants, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { ResidentError } from '../../errors.ts'

/** One `cgi.bin` entry: URL prefix (starting and ending with `/`) → absolute folder. */
export interface CgiBin {
  prefix: string
  dir: string
}

export interface ResolvedScript {
  bin: CgiBin
  /** The program's real path (symlinks resolved), inside the bin folder. */
  file: string
  /** SCRIPT_NAME: the decoded URL path of the program. */
  scriptName: string
  /** PATH_INFO: the decoded rest of the path after the program, "" for none. */
  pathInfo: string
  /** The interpreter that runs it (from `cgi.interpreters`), or null to execute the file itself. */
  interpreter: string | null
}

/** The bin whose prefix the path starts with (the longest, when prefixes nest). */
export function findBin(bins: readonly CgiBin[], urlPath: string): CgiBin | null {
  let best: CgiBin | null = null
  for (const b of bins) if (urlPath.startsWith(b.prefix) && (best === null || b.prefix.length > best.prefix.length)) best = b
  return best
}

const notFound = (urlPath: string) => new ResidentError('RES_ERR_NOT_FOUND', `no CGI program at ${urlPath}`)

function decodeSegment(raw: string): string {
  let s: string
  try {
    s = decodeURIComponent(raw)
  } catch {
    throw new ResidentError('RES_ERR_BAD_REQUEST', 'the URL has an invalid percent-encoding')
  }
  // An encoded slash would make one segment two on disk; CR, LF and NUL have no business in a path (CVE-2019-11043).
  if (/[/\\\0\r\n]/.test(s)) throw new ResidentError('RES_ERR_BAD_REQUEST', 'the CGI path has an encoded slash, backslash or control character')
  return s
}

/**
 * Finds the program a URL path names under its bin folder, walking segment by segment: the first
 * segment that is a file is the program, the rest is PATH_INFO. A request can reach only regular
 * files inside the folder: no `.`/`..`/hidden segments, no empty ones, and the real path (after
 * symlinks) must still be inside the folder's real path. A file runs if it is executable or its
 * extension has an interpreter; otherwise 403.
 *
 * The file system calls are synchronous on purpose: a handful of lookups in the kernel's dentry
 * cache take microseconds, while each asynchronous call is a round trip through libuv's thread
 * pool (two thread wake-ups), which a profile of the gateway showed as a share of its CPU per
 * request. Only a bin folder on a slow network file system would make them worth waiting for.
 */
export async function resolveScript(bin: CgiBin, urlPath: string, interpreters: Readonly<Record<string, string>>): Promise<ResolvedScript> {
  const segments = urlPath.slice(bin.prefix.length).split('/').map(decodeSegment)
  let root: string
  try {
    root = realpathSync.native(bin.dir)
  } catch {
    throw notFound(urlPath)
  }
  let dir = root
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!
    if (seg === '' || seg.startsWith('.')) throw notFound(urlPath)
    const candidate = path.join(dir, seg)
    let real: string
    try {
      real = realpathSync.native(candidate)
    } catch {
      throw notFound(urlPath)
    }
    if (real !== root && !real.startsWith(root + path.sep)) throw notFound(urlPath)
    const st = statSync(real, { throwIfNoEntry: false })
    if (st === undefined) throw notFound(urlPath)
    if (st.isDirectory()) { dir = real; continue }
    if (!st.isFile()) throw notFound(urlPath)
    const ext = path.extname(seg).toLowerCase()
    const interpreter = ext !== '' && Object.prototype.hasOwnProperty.call(interpreters, ext) ? interpreters[ext]! : null
    if (interpreter === null) {
      try {
        accessSync(real, constants.X_OK)
      } catch {
        throw new ResidentError('RES_ERR_CGI_NOT_EXECUTABLE', `${urlPath}: the file is not executable and no interpreter is configured for "${ext || '(no extension)'}"`)
      }
    }
    const rest = segments.slice(i + 1)
    return {
      bin,
      file: real,
      scriptName: bin.prefix + segments.slice(0, i + 1).join('/'),
      pathInfo: rest.length === 0 ? '' : '/' + rest.join('/'),
      interpreter,
    }
  }
  throw notFound(urlPath)
}
