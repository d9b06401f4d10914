import type { RequestContext } from './context.ts'
import { runSteps, type Outcome } from './run.ts'

/**
 * onUrlMap then onAuthenticate, run by the dispatcher before it parses the target (fastify's
 * rewriteUrl is synchronous and a URL changed in onRequest does not re-route). Returns the URL to
 * dispatch, or the Response a filter finished the request with; a Promise only when a filter was async.
 */
export function beforeDispatch(ctx: RequestContext, url: string): string | Response | Promise<string | Response> {
  const chain = ctx.chain
  if (url !== ctx.url) ctx.setUrl(url)
  if (chain.onUrlMap.length > 0) {
    const r: Outcome | Promise<Outcome> = runSteps(chain.onUrlMap, 'onUrlMap', ctx, undefined)
    if (r instanceof Promise) return r.then((res) => res ?? authenticate(ctx))
    if (r !== undefined) return r
  }
  return authenticate(ctx)
}

function authenticate(ctx: RequestContext): string | Response | Promise<string | Response> {
  const steps = ctx.chain.onAuthenticate
  if (steps.length === 0) return ctx.url
  const r = runSteps(steps, 'onAuthenticate', ctx, undefined)
  if (r instanceof Promise) return r.then((res) => res ?? ctx.url)
  return r ?? ctx.url
}
