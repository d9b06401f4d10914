import { Filter, type FilterRequest } from 'resident-host'

// /scripts/<extension>.dll?<Command>&a=1&b=2  (MFC's parse-map URL form) → /<extension>/<command>?a=1&b=2.
// A first query token that contains "=" is a parameter, so the default command runs (as in MFC).
const LEGACY = /^\/scripts\/([A-Za-z0-9][A-Za-z0-9-]{0,63})\.dll$/i

/** Serves classic ISAPI URLs: /scripts/calc.dll?Add&a=2&b=3 is dispatched as /calc/add?a=2&b=3. */
export default class LegacyIsapi extends Filter {
  static override paths = ['/scripts/*']

  override onUrlMap(_req: FilterRequest, url: string) {
    const q = url.indexOf('?')
    const m = LEGACY.exec(q === -1 ? url : url.slice(0, q))
    if (!m) return
    const extension = m[1]!.toLowerCase()
    const tokens = q === -1 ? [] : url.slice(q + 1).split(/[&?]/).filter((t) => t !== '')
    const command = tokens.length > 0 && !tokens[0]!.includes('=') ? tokens.shift()!.toLowerCase() : ''
    return `/${extension}/${command}${tokens.length > 0 ? `?${tokens.join('&')}` : ''}`
  }
}
