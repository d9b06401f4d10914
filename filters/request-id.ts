import { Filter, isValidRequestId, type FilterRequest, type FilterResponse } from 'resident-host'

/** Gives every response an `x-request-id` header: the caller's (when valid) or Resident's own. */
export default class RequestId extends Filter {
  static override priority = 'high' as const

  override onSendResponse(req: FilterRequest, res: FilterResponse) {
    const incoming = req.headers['x-request-id']
    // A caller's id only if it is short and plain, so it cannot inject into logs or headers.
    res.setHeader('x-request-id', isValidRequestId(incoming) ? incoming : req.id)
  }
}
