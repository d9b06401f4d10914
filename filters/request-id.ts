import { Filter, type FilterRequest, type FilterResponse } from 'resident'

// Accept a caller's id only if it is short and plain, so it cannot inject into logs or headers.
const VALID = /^[A-Za-z0-9._:-]{1,128}$/

/** Gives every response an `x-request-id` header: the caller's (when valid) or Resident's own. */
export default class RequestId extends Filter {
  static override priority = 'high' as const

  override onSendResponse(req: FilterRequest, res: FilterResponse) {
    const incoming = req.headers['x-request-id']
    res.setHeader('x-request-id', typeof incoming === 'string' && VALID.test(incoming) ? incoming : req.id)
  }
}
