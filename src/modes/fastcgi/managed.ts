// What passes between the fastcgi mode's executor and the fcgi-workers it manages, besides the
// requests themselves.

/**
 * The FastCGI parameter that asks a worker for an extension's command table and watch set. A
 * parameter, not a header: a client cannot send one through a web server (headers arrive as HTTP_*).
 */
export const DESCRIBE_PARAM = 'RESIDENT_DESCRIBE'
/**
 * Parameters that ask a managed worker to run an extension's unload (`dispose(reason)`) or its
 * `canUnload(reason)`, so the extension sees the host's reason rather than the worker's shutdown.
 * The value is the extension's name; the reason travels in REASON_PARAM.
 */
export const UNLOAD_PARAM = 'RESIDENT_UNLOAD'
export const CAN_UNLOAD_PARAM = 'RESIDENT_CAN_UNLOAD'
export const REASON_PARAM = 'RESIDENT_REASON'
/** The environment variable that gives a managed worker the host's generation number. */
export const GENERATION_ENV = 'RESIDENT_GENERATION'
/** The header that carries the host's request id; managed workers take it as their own. */
export const INVOCATION_ID_HEADER = 'x-resident-invocation-id'
/** The header that carries the user a host filter attached, as JSON. */
export const USER_HEADER = 'x-resident-user'

/** The filter a managed worker runs: the host's user becomes the command's `request.user`. */
export const USER_FILTER_SOURCE = `import { Filter } from 'resident-host'
/** Written by Resident's fastcgi mode: the user the host's filters attached, as the host sent it. */
export default class ResidentUser extends Filter {
  onAuthenticate(req) {
    const u = req.headers['${USER_HEADER}']
    if (typeof u === 'string') { try { req.user = JSON.parse(u) } catch { /* not from the host */ } }
  }
}
`
