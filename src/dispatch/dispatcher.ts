import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { beforeDispatch } from '../filters/dispatch.ts'
import type { RequestContext } from '../filters/context.ts'
import { requestLogger } from '../log/request-logger.ts'
import type { Invocation } from '../modes/invocation.ts'
import type { Outcome } from '../modes/outcome.ts'
import { coerceParams, mergeInputs } from '../modes/params.ts'
import { fromWebResponse } from '../modes/results.ts'
import { sendOutcome } from '../modes/send.ts'
import type { Generation } from '../residency/generation.ts'
import type { Registry } from '../residency/registry.ts'
import { parseBody, parseForm } from './body.ts'
import { Deadlines } from './deadlines.ts'
import { findCommand, isValidTarget, parseTarget, type Target } from './route.ts'
import { plainUser } from './user.ts'
import { AUTHORIZE_ONLY } from '../modes/gateway/bridge.ts'

const EMPTY = Buffer.alloc(0)

/** The status an error will be answered with (the error handler's rule), for the metrics. */
const statusOf = (e: unknown): number => {
  const s = (e as { status?: unknown; statusCode?: unknown } | null)?.status ?? (e as { statusCode?: unknown } | null)?.statusCode
  return typeof s === 'number' && s >= 100 && s <= 599 ? s : 500
}
const noExtensionServes = (url: string) => new ResidentError('RES_ERR_NOT_FOUND', `no extension serves ${url.split('?')[0]}`)

/** What a request needs to log a streamed body's late failure: one object, made only for streams. */
interface StreamLog { log: PinoLogger; inv: Invocation }
const lateStreamError = (s: StreamLog, e: Error) => {
  requestLogger(s.log, s.inv.id).error({ err: e }, `${s.inv.extension}/${s.inv.command}: the streamed response failed after its headers were sent`)
}

/**
 * A gateway's AUTHORIZER request (FastCGI role 2): only onUrlMap and onAuthenticate run. A filter's
 * own answer (a 401 with its challenge) goes back as the denial; otherwise 200 allows, with the
 * identity onAuthenticate attached as `Variable-REMOTE_USER`, which the web server passes on.
 */
function authorize(reply: FastifyReply, filters: RequestContext | null, url: string): void | Promise<void> {
  const allow = () => {
    const user = filters?.user
    if (user !== undefined && user !== null) {
      const name = typeof user === 'string' ? user : typeof user === 'object' && typeof (user as { name?: unknown }).name === 'string' ? (user as { name: string }).name : JSON.stringify(user)
      reply.header('variable-remote_user', name.replace(/[\r\n]/g, ''))
    }
    reply.code(200).send()
  }
  if (filters === null) { allow(); return }
  const verdict = beforeDispatch(filters, url)
  if (verdict instanceof Promise) return verdict.then((v) => typeof v === 'string' ? allow() : void sendOutcome(reply, fromWebResponse(v), false))
  if (typeof verdict === 'string') allow()
  else sendOutcome(reply, fromWebResponse(verdict), false)
}

/**
 * The one wildcard route's handler: URL → extension + command → parameters → invocation →
 * the generation's executor → outcome → response.
 *
 * Synchronous wherever it can be: a resident in-process extension whose command returns a value
 * (not a promise) is answered without a promise, a timer or a listener; async steps (a first load,
 * an async filter, an async command, any out-of-process mode) take the promise path. A request
 * leases its generation until its response no longer needs it: at once for a body sent whole, on
 * `close` for a streamed one, and never before an async outcome has settled.
 */
export class Dispatcher {
  readonly #registry: Registry
  readonly #deadlines: Deadlines
  /** A streamed response's deadline, counted from the request's start (limits.streamTimeout, else requestTimeout). */
  readonly #streamDeadlines: Deadlines
  readonly #closing: () => boolean
  readonly #log: PinoLogger
  readonly #parameterLimit: number
  readonly #development: boolean
  readonly #limits: ResidentConfig['limits']
  /** The slow log's threshold in ms (Infinity = off): requests holding a generation longer are logged. */
  readonly #slowMs: number
  /** Async commands still running at the slow-log threshold are logged then, as PHP-FPM's slow log does. */
  readonly #slowWatch: Deadlines

  /** `log` is the server's logger; `closing` says when the server is shutting down (new requests then get a 503). */
  constructor(registry: Registry, config: ResidentConfig, log: PinoLogger, closing: () => boolean = () => false) {
    this.#registry = registry
    this.#log = log
    this.#limits = config.limits
    this.#deadlines = new Deadlines(config.requestTimeout)
    this.#streamDeadlines = new Deadlines(config.limits.streamTimeout ?? config.requestTimeout, 'streamed response')
    this.#closing = closing
    this.#parameterLimit = config.parameterLimit
    this.#development = config.development
    this.#slowMs = config.slowLog.threshold > 0 ? config.slowLog.threshold : Infinity
    // +1: deadlines are kept on Date.now()'s whole milliseconds and could fire a fraction of one early.
    this.#slowWatch = new Deadlines(config.slowLog.threshold > 0 ? config.slowLog.threshold + 1 : 0)
  }

  /** Ends the request's lease, recording its duration and status; logs it when it was slow. */
  #release(gen: Generation, started: number, status: number, request: FastifyRequest, command: string | null): void {
    const ms = this.#registry.release(gen, started, status)
    if (ms > this.#slowMs) logSlow(this.#log, gen, request, command, ms, status)
  }

  /** Answers the request; returns a promise only when a step was async. Throws (or rejects) with what the error handler should send. */
  handle(request: FastifyRequest, reply: FastifyReply, url: string = request.url): void | Promise<void> {
    if (this.#closing()) throw new ResidentError('RES_ERR_UNAVAILABLE', undefined, { headers: { connection: 'close' } })
    const filters = request.filters ?? null
    if ((request.raw as unknown as Record<symbol, unknown>)[AUTHORIZE_ONLY] === true) return authorize(reply, filters, url)
    if (filters !== null) {
      const mapped = beforeDispatch(filters, url)
      if (mapped instanceof Promise) {
        return mapped.then((m) => typeof m === 'string' ? this.#route(request, reply, m, filters) : void this.#answer(reply, m))
      }
      if (typeof mapped !== 'string') { this.#answer(reply, mapped); return }
      url = mapped
    }
    return this.#route(request, reply, url, filters)
  }

  /** A filter answered the request with a web Response. */
  #answer(reply: FastifyReply, res: Response): void {
    sendOutcome(reply, fromWebResponse(res), this.#development)
  }

  #route(request: FastifyRequest, reply: FastifyReply, url: string, filters: RequestContext | null): void | Promise<void> {
    const target = parseTarget(url)
    if (!target) throw noExtensionServes(url)
    // Only valid names are resident, so a hit needs no check of the name; a miss does, before
    // the name goes anywhere near the file system.
    const gen = this.#registry.tryAcquire(target.extension)
    if (gen !== null) return this.#run(request, reply, url, target, gen, filters)
    if (!isValidTarget(target)) throw noExtensionServes(url)
    return this.#registry.acquire(target.extension).then((loaded) => {
      if (!loaded) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${target.extension}"`)
      return this.#run(request, reply, url, target, loaded, filters)
    }, (e: unknown) => this.#failed(target.extension, request.id, e))
  }

  /** Counts a failure against its extension (status shows 5xx and the last error), then passes it on. */
  #failed(extension: string, requestId: string, e: unknown): never {
    this.#registry.recordFailure(extension, e, requestId)
    throw e
  }

  /** Runs the command on a leased generation; every way out of here releases the lease exactly once. */
  #run(request: FastifyRequest, reply: FastifyReply, url: string, target: Target, gen: Generation, filters: RequestContext | null): void | Promise<void> {
    const started = performance.now()
    let inv: Invocation
    let outcome: Outcome | Promise<Outcome>
    try {
      const info = findCommand(gen.module.table, target.command)
      if (!info) {
        if (!isValidTarget(target)) throw noExtensionServes(url)
        throw new ResidentError('RES_ERR_UNKNOWN_COMMAND', target.command === null
          ? `extension "${target.extension}" has no default command`
          : `extension "${target.extension}" has no command "${target.command}"`)
      }
      if (!info.methods.includes(request.method)) {
        throw new ResidentError('RES_ERR_METHOD_NOT_ALLOWED', `${target.extension}/${info.name} accepts ${info.methods.join(', ')}, not ${request.method}`, {
          headers: { allow: info.methods.join(', ') },
        })
      }
      const rawBody = Buffer.isBuffer(request.body) ? request.body : EMPTY
      const { body, contentType } = parseBody(rawBody, request.headers['content-type'], info.accepts, this.#limits, this.#parameterLimit)
      const query = parseForm(target.query, this.#parameterLimit)
      // Declared parameters are read out of the inputs into a new object, so without a body the
      // query itself will do; undeclared ones get a merged copy of their own.
      const params = info.params
        ? coerceParams(info.params, body === undefined ? query : mergeInputs(query, body), this.#limits.paramLength)
        : mergeInputs(query, body)
      inv = {
        id: request.id,
        extension: target.extension,
        command: info.name,
        method: request.method,
        url,
        path: target.path,
        query,
        headers: request.headers,
        params,
        body,
        rawBody,
        contentType,
        clientAddress: request.ip ?? '',
        user: filters !== null && filters.user !== undefined ? plainUser(filters.user) : undefined,
        deadline: this.#deadlines.deadlineFromNow(),
      }
      outcome = gen.module.invoke(inv)
    } catch (e) {
      this.#release(gen, started, statusOf(e), request, target.command)
      this.#failed(target.extension, request.id, e)
    }
    if (outcome instanceof Promise) return this.#settle(reply, outcome, inv, gen, started)
    this.#respond(reply, outcome, inv, gen, started)
  }

  /** An async outcome: the call is cancelled if the client goes away or the deadline passes (the client then gets a 504 at once). */
  async #settle(reply: FastifyReply, pending: Promise<Outcome>, inv: Invocation, gen: Generation, started: number): Promise<void> {
    const raw = reply.raw
    const onClose = () => { if (!raw.writableFinished) gen.module.cancel(inv.id, 'client-gone') }
    raw.once('close', onClose)
    // A command that ignores its signal must not hold its generation for ever: its lease ends
    // with its deadline, and what it returns afterwards is dropped.
    let expired = false
    const deadline = this.#deadlines.start((err) => {
      expired = true
      gen.module.cancel(inv.id, 'timeout')
      // Its lease ends below; the call is counted as abandoned on its generation until it settles.
      this.#registry.abandon(gen, pending)
      this.#registry.recordFailure(inv.extension, err, inv.id)
      if (!reply.sent) reply.send(err)
      this.#release(gen, started, 504, reply.request, inv.command)
    })
    const slow = this.#slowWatch.start(() => logStillRunning(this.#log, gen, reply.request, inv, started))
    let outcome: Outcome
    try {
      outcome = await pending
    } catch (e) {
      // Executors answer failures with error outcomes; a rejection is a fault of the executor itself.
      if (expired) return
      this.#release(gen, started, 500, reply.request, inv.command)
      this.#failed(inv.extension, inv.id, new ResidentError('RES_ERR_INTERNAL', `the ${gen.module.mode} executor failed: ${(e as Error)?.message ?? e}`, { cause: e }))
    } finally {
      this.#deadlines.stop(deadline)
      this.#slowWatch.stop(slow)
      raw.off('close', onClose)
    }
    if (expired) {
      if (outcome.kind === 'stream') outcome.body.destroy()
      return
    }
    this.#respond(reply, outcome, inv, gen, started)
  }

  /** Sends the outcome; a body sent whole releases the lease now, a streamed one when the response closes. */
  #respond(reply: FastifyReply, outcome: Outcome, inv: Invocation, gen: Generation, started: number): void {
    const raw = reply.raw
    if (reply.sent || raw.destroyed) {
      if (outcome.kind === 'stream') outcome.body.destroy()
      this.#release(gen, started, reply.statusCode, reply.request, inv.command)
      return
    }
    if (outcome.kind === 'error') {
      this.#release(gen, started, outcome.error.status, reply.request, inv.command)
      if (outcome.error.status >= 500) {
        // The failure's own message is the first line of its stack (the record's is the client's).
        const e = outcome.error
        this.#registry.recordFailure(inv.extension, { ...e, message: e.stack?.split('\n', 1)[0]?.replace(/^\w*Error: /, '') || e.message }, inv.id)
        requestLogger(this.#log, inv.id).error({ err: { message: e.stack?.split('\n', 1)[0] ?? e.message, code: e.code, stack: e.stack } },
          `${inv.method} ${inv.url} failed: ${outcome.error.code}`)
      }
      sendOutcome(reply, outcome, this.#development)
      return
    }
    if (outcome.kind === 'body') {
      try {
        sendOutcome(reply, outcome, this.#development)
      } finally {
        this.#release(gen, started, outcome.status, reply.request, inv.command)
      }
      return
    }
    try {
      sendOutcome(reply, outcome, this.#development, lateStreamError, { log: this.#log, inv })
    } catch (e) {
      outcome.body.destroy()
      this.#release(gen, started, 500, reply.request, inv.command)
      this.#failed(inv.extension, inv.id, e)
    }
    if (raw.writableEnded) {
      this.#release(gen, started, reply.statusCode, reply.request, inv.command)
      return
    }
    // The response ends when its connection says so, or when it runs past its deadline: then it
    // is cut off (its headers are out; a 504 can no longer be sent) and ends at once, even while
    // it waits in a pipeline, where no close would come.
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      this.#streamDeadlines.stop(deadline)
      if (!raw.writableFinished) gen.module.cancel(inv.id, 'client-gone')
      this.#release(gen, started, reply.statusCode, reply.request, inv.command)
    }
    const deadline = this.#streamDeadlines.start(() => {
      gen.module.cancel(inv.id, 'timeout')
      requestLogger(this.#log, inv.id).warn(`${inv.extension}/${inv.command}: the streamed response ran past its deadline (${this.#streamDeadlines.ms} ms); cut off`)
      raw.destroy()
      end()
    }, performance.now() - started)
    raw.once('close', end)
  }
}

/**
 * The slow log at the threshold, while the command still runs (the line when it ends follows).
 * A mode that runs the command elsewhere (a worker thread) adds that thread's stack, read at the
 * threshold as PHP-FPM's slow log does; the in-process mode has none to give but the host's own.
 */
function logStillRunning(log: PinoLogger, gen: Generation, request: FastifyRequest, inv: Invocation, started: number): void {
  const runningMs = Math.round((performance.now() - started) * 10) / 10
  const write = (stack?: string | null) => {
    log.warn({ slow: { extension: gen.name, command: inv.command, generation: gen.id, runningMs, requestId: request.id, running: true, ...(stack ? { stack } : {}) } },
      `slow request still running: ${gen.name}/${inv.command} for ${runningMs} ms (request ${request.id})`)
  }
  if (gen.module.stackOf === undefined) { write(); return }
  gen.module.stackOf(inv.id).then(write, () => write())
}

/** One slow-log line (after PHP-FPM's request_slowlog_timeout): what ran, for how long, and which request. */
function logSlow(log: PinoLogger, gen: Generation, request: FastifyRequest, command: string | null, ms: number, status: number): void {
  const durationMs = Math.round(ms * 10) / 10
  log.warn({ slow: { extension: gen.name, command: command ?? '(default)', generation: gen.id, durationMs, status, requestId: request.id } },
    `slow request: ${gen.name}/${command ?? ''} took ${durationMs} ms (request ${request.id})`)
}
