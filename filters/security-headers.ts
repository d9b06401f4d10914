import { Filter, type FilterRequest, type FilterResponse } from 'resident-host'

const HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
}

/** Sets the usual security headers on every response (a command's own values win). */
export default class SecurityHeaders extends Filter {
  override onSendResponse(_req: FilterRequest, res: FilterResponse) {
    for (const name in HEADERS) if (res.getHeader(name) === undefined) res.setHeader(name, HEADERS[name]!)
  }
}
