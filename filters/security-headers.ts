import { Filter, type FilterRequest, type FilterResponse } from 'resident-host'

// A page may load what its own origin serves and nothing else, may not be framed, and may run no
// inline script: markup that reaches a page from input cannot run. A command sends its own policy
// when it needs another (the markdown example sends a stricter one); config.contentSecurityPolicy
// replaces this default, and false leaves the header out.
export const CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export const HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
}

/** Sets the usual security headers, a Content-Security-Policy included, on every response (a command's own values win). */
export default class SecurityHeaders extends Filter {
  #csp: string | null = null

  override init() {
    const configured = (this.host.config as { contentSecurityPolicy?: unknown }).contentSecurityPolicy
    this.#csp = configured === false ? null : typeof configured === 'string' ? configured : CSP
  }

  override onSendResponse(_req: FilterRequest, res: FilterResponse) {
    for (const name in HEADERS) if (res.getHeader(name) === undefined) res.setHeader(name, HEADERS[name]!)
    if (this.#csp !== null && res.getHeader('content-security-policy') === undefined) res.setHeader('content-security-policy', this.#csp)
  }
}
