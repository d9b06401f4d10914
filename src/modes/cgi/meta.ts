/**
 * RFC 3875 §4.1 meta-variables: what a CGI program finds in its environment. Built from plain
 * data (no fastify), so the gateway, the cgi executor and the tests share one builder.
 */

/** What the server knows about one request, already decoded and checked by the caller. */
export interface CgiRequest {
  method: string
  /** The URL path of the program itself (decoded, no PATH_INFO); "" when the program is at the root. */
  scriptName: string
  /** The decoded path after the program's part, or "" for none (then PATH_INFO is left unset). */
  pathInfo: string
  /** PATH_INFO mapped onto the file system, or null to leave PATH_TRANSLATED unset. */
  pathTranslated: string | null
  /** The query, still URL-encoded, without the `?`; "" for none. */
  queryString: string
  /** The request target as the client sent it (path and query). */
  requestUri: string
  /** Node's header object: lower-case names, repeated headers as arrays (set-cookie) or joined. */
  headers: Record<string, string | string[] | undefined>
  /** The body's length in bytes (after removing transfer codings), or null when there is no body. */
  contentLength: number | null
  remoteAddr: string
  remotePort: number | null
  serverAddr: string
  serverPort: number
  /** The host name the client asked for (Host without its port), or the server's address. */
  serverName: string
  serverProtocol: string
  scheme: 'http' | 'https'
  serverSoftware: string
  /** The identity an authentication filter established (sets REMOTE_USER and AUTH_TYPE). */
  remoteUser?: string | null
  /** Absolute path of the program's file (SCRIPT_FILENAME, which php-cgi needs). */
  scriptFilename?: string | null
  documentRoot?: string | null
}

export interface MetaOptions {
  /** Pass `Authorization` on as HTTP_AUTHORIZATION (off: RFC 3875 §9.2, it would show in `ps -e`). */
  passAuthorization?: boolean
  /** Extra variables (`REDIRECT_STATUS` for php-cgi, …); they cannot override the request's own. */
  extra?: Record<string, string>
}

/**
 * Headers never passed as HTTP_*: credentials (§9.2), the ones with a meta-variable of their own,
 * hop-by-hop headers that describe Resident's connection rather than the request, and `Proxy`
 * (httpoxy: HTTP_PROXY is read as proxy configuration by libcurl, Go, Python…).
 */
const NOT_PASSED = new Set([
  'authorization', 'proxy-authorization', 'content-length', 'content-type', 'proxy',
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
])

/** Only names like `X-Foo-Bar`: `X_Foo` would map to the same HTTP_X_FOO and could spoof it. */
const PASSABLE_NAME = /^[a-z0-9-]+$/

/** A value a process environment can hold (Node refuses NUL) and a script can trust to be one line. */
const SAFE_VALUE = /^[^\0\r\n]*$/

/** `::ffff:1.2.3.4` (a v4 client on a dual-stack socket) → `1.2.3.4`, as other servers report it. */
export function unmapAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** The header name's meta-variable: `x-forwarded-for` → `HTTP_X_FORWARDED_FOR`; null when it is not passed. */
export function headerVariable(name: string, passAuthorization = false): string | null {
  const lower = name.toLowerCase()
  if (!PASSABLE_NAME.test(lower)) return null
  if (NOT_PASSED.has(lower) && !(passAuthorization && lower === 'authorization')) return null
  return `HTTP_${lower.toUpperCase().replaceAll('-', '_')}`
}

/**
 * The meta-variables for `req`, on top of `base` (the allow-listed environment). Variables the
 * RFC makes conditional are left unset rather than empty: CONTENT_LENGTH and CONTENT_TYPE only
 * with a body, PATH_INFO/PATH_TRANSLATED only with a path after the program, REMOTE_USER and
 * AUTH_TYPE only with an authenticated user.
 */
export function buildMetaVariables(req: CgiRequest, base: Record<string, string> = {}, options: MetaOptions = {}): Record<string, string> {
  const env: Record<string, string> = Object.create(null)
  for (const [k, v] of Object.entries(base)) env[k] = v
  for (const [k, v] of Object.entries(options.extra ?? {})) env[k] = v

  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue
    const variable = headerVariable(name, options.passAuthorization)
    if (variable === null) continue
    // Node joins most repeated headers with ", " already; set-cookie/cookie arrive as arrays.
    const joined = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value
    if (!SAFE_VALUE.test(joined)) continue
    env[variable] = joined
  }

  env.GATEWAY_INTERFACE = 'CGI/1.1'
  env.SERVER_SOFTWARE = req.serverSoftware
  env.SERVER_NAME = req.serverName
  env.SERVER_PORT = String(req.serverPort)
  env.SERVER_ADDR = unmapAddress(req.serverAddr)
  env.SERVER_PROTOCOL = req.serverProtocol
  env.REQUEST_METHOD = req.method
  env.REQUEST_URI = req.requestUri
  env.REQUEST_SCHEME = req.scheme
  if (req.scheme === 'https') env.HTTPS = 'on'
  env.SCRIPT_NAME = req.scriptName
  env.QUERY_STRING = req.queryString
  const remote = unmapAddress(req.remoteAddr)
  env.REMOTE_ADDR = remote
  // No reverse lookup per request: RFC 3875 §4.1.9 allows REMOTE_ADDR's value here.
  env.REMOTE_HOST = remote
  if (req.remotePort !== null) env.REMOTE_PORT = String(req.remotePort)
  if (req.pathInfo !== '') {
    env.PATH_INFO = req.pathInfo
    if (req.pathTranslated !== null) env.PATH_TRANSLATED = req.pathTranslated
  }
  if (req.contentLength !== null) {
    env.CONTENT_LENGTH = String(req.contentLength)
    const type = req.headers['content-type']
    if (typeof type === 'string' && type !== '' && SAFE_VALUE.test(type)) env.CONTENT_TYPE = type
  }
  if (req.remoteUser) {
    env.REMOTE_USER = req.remoteUser
    const auth = req.headers.authorization
    const scheme = typeof auth === 'string' ? /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)/.exec(auth)?.[1] : undefined
    if (scheme) env.AUTH_TYPE = scheme
  }
  if (req.scriptFilename) env.SCRIPT_FILENAME = req.scriptFilename
  if (req.documentRoot) env.DOCUMENT_ROOT = req.documentRoot
  return env
}

/** What a program gets of the host's own environment by default: enough to find programs and speak the locale. */
export const DEFAULT_PASS_ENV = ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'SYSTEMROOT']

const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin'
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * The base environment: the allow-listed names from the host's environment, then the configured
 * fixed values. Never the host's whole environment (it holds secrets, and NODE_OPTIONS or
 * LD_PRELOAD there would change what the program runs). Names that are not identifiers are
 * refused: Node would pass `A=B` as a name and the program would see `A` = `B=…`.
 */
export function baseEnvironment(hostEnv: NodeJS.ProcessEnv, passEnv: readonly string[] = DEFAULT_PASS_ENV, fixed: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = Object.create(null)
  for (const name of passEnv) {
    const v = hostEnv[name]
    if (ENV_NAME.test(name) && v !== undefined && SAFE_VALUE.test(v)) env[name] = v
  }
  for (const [k, v] of Object.entries(fixed)) if (ENV_NAME.test(k) && SAFE_VALUE.test(v)) env[k] = v
  env.PATH ??= FALLBACK_PATH
  return env
}
