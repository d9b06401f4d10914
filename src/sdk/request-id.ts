/** What a caller may choose as its request id: short and plain, so it cannot inject into logs or headers. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Whether a caller-supplied request id is acceptable: 1–128 characters of `A–Z a–z 0–9 . _ : -`.
 * The host applies it to `requestIdHeader`; filters that honour an incoming id should too.
 */
export function isValidRequestId(id: unknown): id is string {
  return typeof id === 'string' && VALID_REQUEST_ID.test(id)
}
