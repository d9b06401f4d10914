import type { IncomingHttpHeaders } from 'node:http'

/** Where a URL under an app's prefix leads: the script, and the path after it. */
export interface ScriptPath {
  /** URL path of the script, e.g. /php/hello.php. */
  scriptName: string
  /** The script relative to the app's root, e.g. hello.php. */
  script: string
  /** What follows the script, e.g. /extra; '' when nothing does. */
  pathInfo: string
}

export class ScriptPathError extends Error {
  override name = 'ScriptPathError'
  constructor(readonly kind: 'bad' | 'none', message: string) { super(message) }
}

/**
 * Splits a URL path under `prefix` into script and PATH_INFO at the first segment that ends in
 * one of `extensions` (as nginx's fastcgi_split_path_info does), or names `index` when the path
 * is a folder. Segments are percent-decoded one by one; `.`, `..`, and segments hiding a slash, a
 * backslash or a NUL are refused, so the script can never lie outside the root.
 */
export function splitScriptPath(pathname: string, prefix: string, extensions: readonly string[], index: string): ScriptPath {
  const rest = pathname.slice(prefix.length)
  const raw = rest === '' ? [] : rest.split('/')
  const segments: string[] = []
  for (const r of raw) {
    let s: string
    try { s = decodeURIComponent(r) } catch { throw new ScriptPathError('bad', `the path has bad percent-encoding: ${pathname}`) }
    if (s === '.' || s === '..' || /[/\\\0]/.test(s)) throw new ScriptPathError('bad', `the path segment ${JSON.stringify(r)} is not allowed`)
    segments.push(s)
  }
  const at = segments.findIndex((s) => extensions.some((e) => s.length > e.length && s.endsWith(e)))
  if (at >= 0) {
    const script = segments.slice(0, at + 1).join('/')
    const after = segments.slice(at + 1)
    return { scriptName: prefix + script, script, pathInfo: after.length === 0 ? '' : '/' + after.join('/') }
  }
  const last = segments.at(-1)
  if (last === undefined || last === '') {
    const folder = segments.filter((s, i) => s !== '' || i < segments.length - 1)
    if (folder.includes('')) throw new ScriptPathError('bad', `the path has an empty segment: ${pathname}`)
    const script = [...folder, index].join('/')
    return { scriptName: prefix + script, script, pathInfo: '' }
  }
  throw new ScriptPathError('none', `no script in ${pathname} (scripts end in ${extensions.join(', ')})`)
}

export interface CgiEnvInput {
  method: string
  /** The request target as received (path and query). */
  requestUri: string
  headers: IncomingHttpHeaders
  script: ScriptPath
  /** The scripts' folder on the backend's host. */
  root: string
  remoteAddress: string
  remotePort: number | undefined
  serverAddress: string | undefined
  serverPort: number | undefined
  https: boolean
  /** CONTENT_LENGTH, when the request has a body. */
  contentLength: number | undefined
  serverSoftware: string
  extra: Record<string, string>
}

const HEADER_NAME = /^[A-Za-z0-9-]+$/

/**
 * The CGI/1.1 meta-variables for a request (RFC 3875 §4.1, as php-fpm expects them). Headers
 * become HTTP_* except: `Proxy` (httpoxy), names with underscores (they would collide with a
 * dashed twin), and Content-Type/Length (they have their own variables). Repeated headers are
 * joined with ", ", cookies with "; ".
 */
export function cgiEnv(i: CgiEnvInput): Array<[string, string]> {
  const q = i.requestUri.indexOf('?')
  const env: Array<[string, string]> = [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', i.serverSoftware],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', i.method],
    ['REQUEST_URI', i.requestUri],
    ['DOCUMENT_URI', i.script.scriptName + i.script.pathInfo],
    ['QUERY_STRING', q < 0 ? '' : i.requestUri.slice(q + 1)],
    ['SCRIPT_NAME', i.script.scriptName],
    ['SCRIPT_FILENAME', `${i.root.replace(/\/+$/, '')}/${i.script.script}`],
    ['DOCUMENT_ROOT', i.root],
    ['REMOTE_ADDR', i.remoteAddress],
    // php-cgi refuses to run without it (its force-cgi-redirect check).
    ['REDIRECT_STATUS', '200'],
  ]
  if (i.script.pathInfo !== '') env.push(['PATH_INFO', i.script.pathInfo])
  if (i.remotePort !== undefined) env.push(['REMOTE_PORT', String(i.remotePort)])
  if (i.serverAddress !== undefined) env.push(['SERVER_ADDR', i.serverAddress])
  if (i.serverPort !== undefined) env.push(['SERVER_PORT', String(i.serverPort)])
  const host = typeof i.headers.host === 'string' ? i.headers.host : ''
  env.push(['SERVER_NAME', host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') || (i.serverAddress ?? 'localhost')])
  if (i.https) env.push(['HTTPS', 'on'])
  if (i.contentLength !== undefined) {
    env.push(['CONTENT_LENGTH', String(i.contentLength)])
    const type = i.headers['content-type']
    if (typeof type === 'string') env.push(['CONTENT_TYPE', type])
  }
  for (const [name, value] of Object.entries(i.headers)) {
    if (value === undefined || name === 'proxy' || name === 'content-type' || name === 'content-length' || !HEADER_NAME.test(name)) continue
    const joined = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value
    env.push([`HTTP_${name.toUpperCase().replaceAll('-', '_')}`, joined])
  }
  for (const [k, v] of Object.entries(i.extra)) env.push([k, v])
  return env
}
