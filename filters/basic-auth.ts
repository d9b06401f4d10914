import crypto from 'node:crypto'
import { Filter, HttpError, type FilterRequest } from 'resident-host'

// Fixed-length digests compared in constant time: how long a check takes says nothing about the
// length of the secret or how much of it matched.
const digest = (s: string) => crypto.createHash('sha256').update(s).digest()
function same(a: string, b: string): boolean {
  return crypto.timingSafeEqual(digest(a), digest(b))
}

/**
 * HTTP Basic authentication for /secret/ (a demo: the example config sets demo/demo). The user
 * and password come from `filters.modules.basic-auth.config` or, when set, the environment
 * variables RESIDENT_BASIC_USER and RESIDENT_BASIC_PASSWORD. Without credentials it answers 401
 * with `WWW-Authenticate`; with valid ones the command sees `request.user = { name }`.
 */
export default class BasicAuth extends Filter {
  static override paths = ['/secret', '/secret/**']
  #user = ''
  #password = ''
  #realm = 'Resident'

  override init() {
    const c = this.host.config as { user?: unknown; password?: unknown; realm?: unknown }
    this.#user = process.env.RESIDENT_BASIC_USER ?? (typeof c.user === 'string' ? c.user : '')
    this.#password = process.env.RESIDENT_BASIC_PASSWORD ?? (typeof c.password === 'string' ? c.password : '')
    if (typeof c.realm === 'string') this.#realm = c.realm.replace(/["\\]/g, '')
    // Fail closed: with no credentials configured nobody gets in.
    if (this.#user === '' || this.#password === '') this.host.log.warn({}, 'basic-auth has no user/password configured: every request to its paths is denied')
  }

  override onAuthenticate(req: FilterRequest) {
    const header = req.headers.authorization
    if (typeof header === 'string' && /^basic /i.test(header) && this.#user !== '') {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      // Both compared, always (`&`, not `&&`): a wrong user name costs what a wrong password does,
      // so timing cannot tell which user names exist.
      const user = same(colon === -1 ? decoded : decoded.slice(0, colon), this.#user)
      const password = same(colon === -1 ? '' : decoded.slice(colon + 1), this.#password)
      if (colon !== -1 && (Number(user) & Number(password)) === 1) {
        req.user = { name: this.#user, scheme: 'basic' }
        return
      }
    }
    throw new HttpError(401, 'valid credentials are required', {
      code: 'UNAUTHENTICATED',
      headers: { 'www-authenticate': `Basic realm="${this.#realm}", charset="UTF-8"` },
    })
  }
}
