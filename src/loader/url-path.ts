import { ResidentError } from '../errors.ts'

// The one reading of a request path, shared by the router and by filters' `static paths`: a filter
// guarding `/markdown/**` must see exactly the names the router will look up. Names are
// percent-decoded and lower-cased, and only ASCII may be lower-cased: `/mar%E2%84%AAdown/`
// (U+212A KELVIN SIGN) would otherwise fold to `markdown` for the router while no pattern saw it.

const NON_ASCII = /[^\x00-\x7f]/

/**
 * One extension or command segment, percent-decoded and checked to be ASCII, not yet lower-cased.
 * Throws a 400 for a broken percent-encoding or a non-ASCII name.
 */
export function decodeName(segment: string): string {
  let decoded = segment
  if (segment.includes('%')) {
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      throw new ResidentError('RES_ERR_BAD_REQUEST', 'the URL has an invalid percent-encoding')
    }
  }
  if (NON_ASCII.test(decoded)) {
    throw new ResidentError('RES_ERR_BAD_REQUEST', 'extension and command names are ASCII; the URL names one with other characters')
  }
  return decoded
}

/**
 * The path as the router reads it: every segment percent-decoded, the extension and command
 * segments checked to be ASCII and lower-cased. Null when the router would reject the path (a
 * broken encoding or a non-ASCII name), which it then does before any filter could matter.
 */
export function normalisePath(path: string): string | null {
  const plain = plainPath(path)
  if (plain !== null) return plain
  const segments = path.split('/')
  try {
    for (let i = 1; i < segments.length; i++) {
      segments[i] = i <= 2 ? decodeName(segments[i]!).toLowerCase() : decodeURIComponent(segments[i]!)
    }
  } catch {
    return null
  }
  return segments.join('/')
}

/**
 * normalisePath's answer for the common path: no `%` and nothing beyond ASCII, so nothing to
 * decode or check, only the first two segments' capitals to fold (usually none: the path itself).
 * Null when the path needs the full reading.
 */
function plainPath(path: string): string | null {
  let slashes = 0
  let upper = false
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === 37 /* % */ || c > 127) return null
    if (c === 47 /* / */) slashes++
    else if (c >= 65 && c <= 90 && slashes <= 2) upper = true
  }
  if (!upper) return path
  const third = slashes > 2 ? nthSlash(path, 3) : path.length
  return path.slice(0, third).toLowerCase() + path.slice(third)
}

function nthSlash(path: string, n: number): number {
  let seen = 0
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47 && ++seen === n) return i
  return path.length
}
