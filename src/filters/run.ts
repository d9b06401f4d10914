import { ResidentError, isResidentError } from '../errors.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { HANDLED, type NotificationName } from '../sdk/filter.ts'
import { isHttpError } from '../sdk/http-error.ts'
import type { Step } from './chain.ts'
import type { RequestContext } from './context.ts'

// The return protocol, in one place (README "Filters" documents it):
//   undefined          → next filter
//   HANDLED            → skip the remaining filters of this notification only
//   a web Response     → finish the request now with it (request side and response side)
//   a string           → onUrlMap only: the new URL; the next onUrlMap filter sees it
//   false              → onLog only: suppress the entry for the filters after this one
//   throw HttpError    → answered with its status (as from a command)
//   throw anything else→ 500 RES_ERR_FILTER_FAILED with the request id
// The runner stays synchronous while filters return plain values, so a chain of synchronous
// filters costs no promise; the first thenable switches the rest of the run to async.

export type Outcome = Response | undefined

const STOP = Symbol('stop')

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

function isWebResponse(v: unknown): v is Response {
  return v instanceof Response ||
    (typeof v === 'object' && v !== null && Object.prototype.toString.call(v) === '[object Response]')
}

/** A filter's throw as the error the request fails with; logged here with the filter's name. */
export function filterError(step: Step, event: NotificationName, ctx: RequestContext, e: unknown): unknown {
  if (isHttpError(e) || isResidentError(e)) return e
  ctx.log.error({ err: mapErrorStack(e), filter: step.name, notification: event }, `filter "${step.name}" threw in ${event}`)
  return new ResidentError('RES_ERR_FILTER_FAILED', `filter "${step.name}" failed in ${event}`, { cause: e })
}

function interpret(step: Step, event: NotificationName, ctx: RequestContext, r: unknown): Outcome | typeof STOP | undefined {
  if (r === undefined) return undefined
  if (r === HANDLED) return STOP
  if (isWebResponse(r)) return r
  if (event === 'onUrlMap' && typeof r === 'string') {
    if (r.charCodeAt(0) !== 47 /* / */ || r.charCodeAt(1) === 47) {
      throw filterError(step, event, ctx, new TypeError(`onUrlMap must return a path starting with a single "/", got ${JSON.stringify(r.slice(0, 100))}`))
    }
    ctx.setUrl(r)
    return undefined
  }
  if (event === 'onLog' && r === false) return STOP
  throw filterError(step, event, ctx, new TypeError(`${event} returned an unsupported value (${typeof r}); return nothing, HANDLED or a Response`))
}

/**
 * An async filter gets the same deadline as a command (requestTimeout): a hung filter must not hang
 * its request for ever. Only async steps pay for the timer.
 */
function withDeadline(p: PromiseLike<unknown>, step: Step, event: NotificationName, ctx: RequestContext): Promise<unknown> {
  const ms = ctx.chain.timeoutMs
  if (ms <= 0) return Promise.resolve(p)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctx.log.error({ filter: step.name, notification: event }, `filter "${step.name}" did not finish ${event} within ${ms} ms`)
      reject(new ResidentError('RES_ERR_TIMEOUT', `filter "${step.name}" did not finish ${event} within ${ms} ms`))
    }, ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

/**
 * Runs one notification over `steps` from `from`. Returns a Response to finish with, or undefined
 * to go on; a Promise of that only when some filter was async. Throws (or rejects) with the
 * request's error when a filter throws.
 */
export function runSteps(steps: readonly Step[], event: NotificationName, ctx: RequestContext, arg: unknown, from = 0): Outcome | Promise<Outcome> {
  for (let i = from; i < steps.length; i++) {
    const step = steps[i]!
    if (step.matches !== null && !step.matches(ctx.matchPath)) continue
    let r: unknown
    try {
      r = step.fn.call(step.instance, ctx as never, (event === 'onUrlMap' ? ctx.url : arg) as never)
    } catch (e) {
      throw filterError(step, event, ctx, e)
    }
    if (r === undefined) continue
    if (isThenable(r)) {
      return withDeadline(r, step, event, ctx).then((v) => {
        const o = interpret(step, event, ctx, v)
        if (o === STOP) return undefined
        if (o !== undefined) return o
        return runSteps(steps, event, ctx, arg, i + 1)
      }, (e: unknown) => { throw filterError(step, event, ctx, e) })
    }
    const o = interpret(step, event, ctx, r)
    if (o === STOP) return undefined
    if (o !== undefined) return o
  }
  return undefined
}

/**
 * Runs an after-the-fact notification (onEndOfRequest, onLog): nothing can be answered any more,
 * so a throw is logged with the filter's name and the next filter still runs. Synchronous while
 * every filter is (no promise made per request: the access log runs on every one); a promise
 * from the first filter that returns one.
 */
export function runObservers(steps: readonly Step[], event: NotificationName, ctx: RequestContext, arg: unknown, from = 0): void | Promise<void> {
  for (let i = from; i < steps.length; i++) {
    const step = steps[i]!
    if (step.matches !== null && !step.matches(ctx.matchPath)) continue
    let r: unknown
    try {
      r = step.fn.call(step.instance, ctx as never, arg as never)
    } catch (e) {
      observerFailed(step, event, ctx, e)
      continue
    }
    if (isThenable(r)) {
      return Promise.resolve(r).then(
        (v) => (v === HANDLED || (event === 'onLog' && v === false) ? undefined : runObservers(steps, event, ctx, arg, i + 1)),
        (e: unknown) => { observerFailed(step, event, ctx, e); return runObservers(steps, event, ctx, arg, i + 1) })
    }
    if (r === HANDLED || (event === 'onLog' && r === false)) return
  }
}

function observerFailed(step: Step, event: NotificationName, ctx: RequestContext, e: unknown): void {
  ctx.log.error({ err: mapErrorStack(e), filter: step.name, notification: event }, `filter "${step.name}" threw in ${event}`)
}
