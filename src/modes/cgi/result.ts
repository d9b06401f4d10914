// The head of a CGI response as Resident's runner writes it (RFC 3875 §6).

/** Reason phrases (node:http's STATUS_CODES would load the HTTP stack into every CGI process). */
const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content',
  301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
}

/** `Status: 200 OK` and the headers, then the blank line, with LF line ends (RFC 3875 §6). */
export function formatCgiHead(status: number, headers: ReadonlyArray<readonly [string, string]>): string {
  let out = `Status: ${status} ${REASONS[status] ?? 'Status'}\n`
  for (const [k, v] of headers) {
    // A value with a line end would end the head early or add a header: never written.
    if (/[\r\n\0]/.test(k) || /[\r\n\0]/.test(v)) continue
    out += `${k}: ${v}\n`
  }
  return out + '\n'
}
