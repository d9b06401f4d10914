// `static paths` patterns, compiled once at load. A URL path is matched per notification (the URL
// may change in onUrlMap), so only filters that declare paths pay for a test.

const enum Token { Star = -1, GlobStar = -2 }

/**
 * `/a/*` → one segment, `/a/**` → anything below `/a/` (and `/a/` itself), matched
 * case-insensitively against the percent-decoded path; a RegExp is used as given.
 *
 * A glob is not compiled to a regular expression: with two or more wildcards a backtracking regex
 * takes polynomial time in the path, which the client chooses (three globstars in a row held the
 * event loop 17 s on a path of 2000 slashes). It is run as a set of positions in the pattern instead, one
 * pass over the path: time in proportion to the path's length times the pattern's.
 */
export function compilePattern(p: string | RegExp): PathMatcher {
  if (p instanceof RegExp) return (path) => p.test(path)
  if (typeof p !== 'string' || !p.startsWith('/')) throw new TypeError(`a path pattern must start with "/", got ${JSON.stringify(p)}`)
  const tokens: number[] = []
  // Case-insensitive: extension and command names are looked up case-insensitively.
  const lower = p.toLowerCase()
  for (let i = 0; i < lower.length; i++) {
    if (lower[i] !== '*') tokens.push(lower.charCodeAt(i))
    else if (lower[i + 1] === '*') {
      i++
      // `***` and `**` alike, and a star next to a globstar adds nothing to it.
      while (lower[i + 1] === '*') i++
      if (tokens.at(-1) === Token.Star) tokens.pop()
      if (tokens.at(-1) !== Token.GlobStar) tokens.push(Token.GlobStar)
    } else if (tokens.at(-1) !== Token.Star && tokens.at(-1) !== Token.GlobStar) tokens.push(Token.Star)
  }
  // The literal start of the pattern, checked first: most requests are not under a filter's paths,
  // and are told so without the pattern's state sets.
  let fixed = 0
  while (fixed < tokens.length && tokens[fixed]! >= 0) fixed++
  const prefix = String.fromCharCode(...tokens.slice(0, fixed))
  return (path) => startsWithFolded(path, prefix) && globMatch(tokens, path.toLowerCase())
}

/**
 * Whether `path` may start with `prefix` (lower-case), ignoring the case of ASCII letters in
 * `path`. A character beyond ASCII leaves it to the full match, whose lower-casing may fold it
 * into the prefix (U+212A KELVIN SIGN becomes `k`).
 */
function startsWithFolded(path: string, prefix: string): boolean {
  for (let i = 0; i < prefix.length; i++) {
    if (i >= path.length) return false
    let c = path.charCodeAt(i)
    if (c > 127) return true
    if (c >= 65 && c <= 90) c += 32
    if (c !== prefix.charCodeAt(i)) return false
  }
  return true
}

/** Whether `path` matches the tokens: every position the pattern could be at, advanced together. */
function globMatch(tokens: readonly number[], path: string): boolean {
  const m = tokens.length
  let now = new Uint8Array(m + 1)
  let next = new Uint8Array(m + 1)
  const close = (set: Uint8Array) => {
    // A wildcard may match nothing: being before it is being after it too.
    for (let i = 0; i < m; i++) if (set[i] && tokens[i]! < 0) set[i + 1] = 1
  }
  now[0] = 1
  close(now)
  for (let k = 0; k < path.length; k++) {
    const c = path.charCodeAt(k)
    next.fill(0)
    let any = false
    for (let i = 0; i < m; i++) {
      if (!now[i]) continue
      const t = tokens[i]!
      if (t === Token.GlobStar || (t === Token.Star && c !== 47 /* / */)) { next[i] = 1; any = true } else if (t === c) { next[i + 1] = 1; any = true }
    }
    if (!any) return false
    close(next)
    ;[now, next] = [next, now]
  }
  return now[m] === 1
}

export type PathMatcher = (path: string) => boolean

/** A matcher for a filter's `static paths`, or null when the filter sees every request. */
export function compilePaths(paths: unknown): PathMatcher | null {
  if (paths === undefined || paths === null) return null
  if (!Array.isArray(paths)) throw new TypeError('static paths must be an array of patterns')
  const matchers = paths.map((p) => compilePattern(p as string | RegExp))
  return (path) => {
    for (const match of matchers) if (match(path)) return true
    return false
  }
}
