import { ResidentError } from '../errors.ts'

/**
 * The user a filter attached, as plain JSON: what every mode's command sees, whether it runs in
 * this isolate or across a thread or a process (a class instance, a function or a Date would
 * arrive differently, or not at all, on the other side).
 */
export function plainUser(user: unknown): unknown {
  if (user === null || typeof user === 'string' || typeof user === 'number' || typeof user === 'boolean') return user
  let text: string | undefined
  try {
    text = JSON.stringify(user)
  } catch (e) {
    throw new ResidentError('RES_ERR_FILTER_FAILED', `the user a filter attached is not plain JSON: ${(e as Error).message}`)
  }
  return text === undefined ? undefined : JSON.parse(text)
}
