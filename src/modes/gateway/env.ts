import type { IncomingHttpHeaders } from 'node:http'

/**
 * What a gateway (FastCGI, uwsgi, CGI) hands a responder: the CGI/1.1 meta-variables. This turns
 * them back into the HTTP request the web server received, so the request is dispatched exactly
 * as Resident's own HTTP dispatches it.
 */
export interface GatewayRequestHead {
  method: string
  url: string
  headers: IncomingHttpHeaders
  httpVersion: string
  remoteAddress: string | undefined
  remotePort: number | undefined
  localAddress: string | undefined
  localPort: number | undefined
  https: boolean
}

// A value the web server should never pass on; dropped rather than handed to the app.
const UNSAFE_VALUE = /[\r\n\0]/
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

function port(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,5}$/.test(v)) return undefined
  return Number(v)
}

export function requestFromEnv(env: Map<string, string>): GatewayRequestHead {
  const headers: IncomingHttpHeaders = {}
  for (const [name, value] of env) {
    if (UNSAFE_VALUE.test(value)) continue
    if (name.startsWith('HTTP_')) {
      // HTTP_PROXY is the httpoxy vector for CGI programs; Resident ignores it as a header too.
      if (name === 'HTTP_PROXY') continue
      const h = name.slice(5).toLowerCase().replaceAll('_', '-')
      if (h === '' || !TOKEN.test(h)) continue
      if (h === 'content-type' || h === 'content-length') continue
      headers[h] = value
    }
  }
  const contentType = env.get('CONTENT_TYPE')
  if (contentType) headers['content-type'] = contentType
  const contentLength = env.get('CONTENT_LENGTH')
  if (contentLength && /^\d+$/.test(contentLength)) headers['content-length'] = contentLength
  const method = env.get('REQUEST_METHOD')
  const query = env.get('QUERY_STRING')
  let url = env.get('REQUEST_URI')
  if (!url || url[0] !== '/') {
    url = `${env.get('SCRIPT_NAME') ?? ''}${env.get('PATH_INFO') ?? ''}` || '/'
    if (query) url += `?${query}`
  }
  const protocol = /^HTTP\/(\d\.\d)$/.exec(env.get('SERVER_PROTOCOL') ?? '')
  const https = (env.get('HTTPS') ?? '').toLowerCase()
  return {
    method: method && TOKEN.test(method) ? method : 'GET',
    url,
    headers,
    httpVersion: protocol ? protocol[1]! : '1.1',
    remoteAddress: env.get('REMOTE_ADDR') || undefined,
    remotePort: port(env.get('REMOTE_PORT')),
    localAddress: env.get('SERVER_ADDR') || undefined,
    localPort: port(env.get('SERVER_PORT')),
    https: https === 'on' || https === '1',
  }
}
