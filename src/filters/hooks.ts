import { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import { ResidentError } from '../errors.ts'
import { FRAMING_HEADERS } from '../headers.ts'
import type { AccessLogEntry, EndOfRequest } from '../sdk/filter.ts'
import { errorRecordOf, fromWebResponse } from '../modes/results.ts'
import { errorBody, sendOutcome } from '../modes/send.ts'
import { isoNow } from './clock.ts'
import { RequestContext, ResponseView } from './context.ts'
import type { FilterManager } from './manager.ts'
import { runObservers, runSteps, type Outcome } from './run.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The filter context of this request; null when no filter is loaded. */
    filters: RequestContext | null
  }
}

/**
 * Installs Resident's filter chain into fastify: one hook per fastify event, each running the
 * priority-ordered steps of the chain the request snapshotted on arrival. onUrlMap and
 * onAuthenticate run in the dispatcher (see `beforeDispatch`), since fastify cannot re-route
 * asynchronously. Hooks cost every request something even when they return at once (fastify's
 * hook runners make closures per request: ≈ 0.5 µs in bench/overhead), so a server that starts
 * with no filter goes without them unless `always` (resident dev, where a save may add the first
 * filter); the manager then refuses a reload that would add one. With an empty chain each hook
 * returns after one check.
 */
export function installFilterHooks(app: FastifyInstance, filters: FilterManager, log: PinoLogger, always: boolean): void {
  app.decorateRequest('filters', null)
  if (!always && filters.current.empty) {
    filters.unhooked()
    return
  }

  app.addHook('onRequest', (request, reply, done) => {
    const chain = filters.current
    if (chain.empty) { done(); return }
    const ctx = new RequestContext(request, reply, chain, performance.now(), log)
    request.filters = ctx
    chain.acquire()
    const raw = reply.raw as ContextRes
    raw[CTX] = ctx
    raw.on('close', onResponseClose)
    if (chain.onRequest.length === 0) { done(); return }
    let r: Outcome | Promise<Outcome>
    try { r = runSteps(chain.onRequest, 'onRequest', ctx, undefined) } catch (e) { done(e as Error); return }
    if (r === undefined) { done(); return }
    if (r instanceof Promise) {
      r.then((res) => { if (res === undefined) done(); else finishWith(reply, res) }, (e: Error) => done(e))
      return
    }
    finishWith(reply, r)
  })

  // The sync path allocates one ResponseView and no closures; async filters take the slow path.
  app.addHook('onSend', (request, reply, payload, done) => {
    const ctx = request.filters
    if (ctx === null) { done(null, payload); return }
    const chain = ctx.chain
    const status = reply.statusCode
    const denied = (status === 401 || status === 403) && chain.onAccessDenied.length > 0
    if (!denied && chain.onSendResponse.length === 0) { done(null, payload); return }
    const view = new ResponseView(reply, payload as ResponseView['body'])
    let r: Outcome | Promise<Outcome>
    try {
      if (denied) {
        r = runSteps(chain.onAccessDenied, 'onAccessDenied', ctx, view)
        if (r instanceof Promise) {
          r.then((res) => res === undefined ? runSteps(chain.onSendResponse, 'onSendResponse', ctx, view) : res)
            .then((res) => finishSend(view, reply, res, done), (e: unknown) => failSend(request, reply, payload, e, done))
          return
        }
        if (r !== undefined) { finishSend(view, reply, r, done); return }
      }
      r = runSteps(chain.onSendResponse, 'onSendResponse', ctx, view)
    } catch (e) { failSend(request, reply, payload, e, done); return }
    if (r instanceof Promise) {
      r.then((res) => finishSend(view, reply, res, done), (e: unknown) => failSend(request, reply, payload, e, done))
      return
    }
    finishSend(view, reply, r, done)
  })
}

const isStream = (b: unknown): boolean => typeof b === 'object' && b !== null && typeof (b as { pipe?: unknown }).pipe === 'function'

const CTX = Symbol('resident.filterContext')
type ContextRes = FastifyReply['raw'] & { [CTX]?: RequestContext }

function onResponseClose(this: ContextRes): void {
  const ctx = this[CTX]
  if (ctx !== undefined) endOfRequest(ctx, ctx.reply)
}

type SendDone = (err: Error | null, payload?: unknown) => void

function finishSend(view: ResponseView, reply: FastifyReply, res: Outcome, done: SendDone): void {
  if (res !== undefined) applyResponse(view, reply, res)
  if (view.changed) {
    const b = view.body as unknown
    if (!(b === null || typeof b === 'string' || Buffer.isBuffer(b) || (typeof b === 'object' && typeof (b as { pipe?: unknown }).pipe === 'function'))) {
      const e = new ResidentError('RES_ERR_FILTER_FAILED', `a filter set the response body to ${typeof b}; use a string, a Buffer, a stream or null`)
      reply.request.filters!.log.error({ err: e }, e.message)
      failSend(reply.request, reply, view.body, e, done)
      return
    }
    // fastify computes content-length after onSend for strings and buffers; a stale one would cut the body.
    reply.removeHeader('content-length')
  }
  // A stream's length is unknown: a content-length a filter set would hang the client.
  if (isStream(view.body)) reply.removeHeader('content-length')
  done(null, view.body)
}

/** A throw on the response side: the response becomes the error's JSON body (headers are not sent yet). */
function failSend(request: FastifyRequest, reply: FastifyReply, payload: unknown, e: unknown, done: SendDone): void {
  const n = errorRecordOf(e, false)
  if (payload instanceof Readable) payload.destroy()
  for (const [k, v] of Object.entries(n.headers)) reply.header(k, v)
  reply.code(n.status).header('content-type', 'application/json; charset=utf-8').removeHeader('content-length')
  done(null, JSON.stringify(errorBody(n, request.id, false)))
}

/** A Response a request-side filter answered with: sent now; the remaining hooks and the handler are skipped. */
function finishWith(reply: FastifyReply, res: Response): void {
  sendOutcome(reply, fromWebResponse(res), false)
}

/** A Response a response-side filter answered with replaces status, headers and body. */
function applyResponse(view: ResponseView, reply: FastifyReply, res: Response): void {
  reply.code(res.status)
  // Never the Response's length or framing: the body's real length is measured, or it goes chunked.
  for (const [k, v] of res.headers) if (k !== 'set-cookie' && !FRAMING_HEADERS.has(k)) reply.header(k, v)
  const cookies = res.headers.getSetCookie?.() ?? []
  if (cookies.length > 0) reply.header('set-cookie', cookies)
  view.body = res.body === null ? null : Readable.fromWeb(res.body as import('node:stream/web').ReadableStream)
}

function outcomeOf(status: number, aborted: boolean): EndOfRequest['outcome'] {
  if (aborted) return 'aborted'
  return status >= 500 ? 'error' : status >= 400 ? 'client-error' : 'ok'
}

/** onEndOfRequest, then onLog; then the request lets go of its chain snapshot. Synchronous while the filters are. */
function endOfRequest(ctx: RequestContext, reply: FastifyReply): void {
  const chain = ctx.chain
  if (chain.onEndOfRequest.length === 0 && chain.onLog.length === 0) { chain.release(); return }
  const aborted = !reply.raw.writableEnded
  const status = reply.statusCode
  const durationMs = Math.round((performance.now() - ctx.startTime) * 1000) / 1000
  const outcome = outcomeOf(status, aborted)
  const log = (): void | Promise<void> => {
    if (chain.onLog.length === 0) return
    const length = reply.getHeader('content-length')
    const entry: AccessLogEntry = {
      time: isoNow(), requestId: ctx.id, method: ctx.method, url: ctx.url, originalUrl: ctx.originalUrl,
      status, durationMs, outcome, clientAddress: ctx.clientAddress, userAgent: ctx.headers['user-agent'] as string | undefined,
      contentLength: length === undefined ? undefined : Number(length), user: ctx.user,
    }
    return runObservers(chain.onLog, 'onLog', ctx, entry)
  }
  let pending: void | Promise<void> = undefined
  try {
    pending = chain.onEndOfRequest.length > 0
      ? runObservers(chain.onEndOfRequest, 'onEndOfRequest', ctx, { status, durationMs, outcome, aborted } satisfies EndOfRequest)
      : undefined
    pending = pending === undefined ? log() : pending.then(log)
  } catch (e) {
    ctx.log.error({ err: e }, 'end-of-request filters failed')
  }
  if (pending === undefined) { chain.release(); return }
  pending.catch((e: unknown) => ctx.log.error({ err: e }, 'end-of-request filters failed')).finally(() => chain.release())
}
