// `static paths` patterns, compiled once at load. A URL path is matched per notification (the URL
// may change in onUrlMap), so only filters that declare paths pay for a test.

function escape(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * `/a/*` → one segment, `/a/**` → anything below `/a/` (and `/a/` itself), matched
 * case-insensitively against the percent-decoded path; a RegExp is used as given.
 */
export function compilePattern(p: string | RegExp): RegExp {
  if (p instanceof RegExp) return p
  if (typeof p !== 'string' || !p.startsWith('/')) throw new TypeError(`a path pattern must start with "/", got ${JSON.stringify(p)}`)
  const body = p.split('**').map((part) => part.split('*').map(escape).join('[^/]*')).join('.*')
  // Case-insensitive: extension and command names are looked up case-insensitively.
  return new RegExp(`^${body}$`, 'i')
}

export type PathMatcher = (path: string) => boolean

/** A matcher for a filter's `static paths`, or null when the filter sees every request. */
export function compilePaths(paths: unknown): PathMatcher | null {
  if (paths === undefined || paths === null) return null
  if (!Array.isArray(paths)) throw new TypeError('static paths must be an array of patterns')
  const res = paths.map((p) => compilePattern(p as string | RegExp))
  return (path) => {
    for (const re of res) if (re.test(path)) return true
    return false
  }
}
