import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify'
import pino, { type Logger as PinoLogger } from 'pino'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { Dispatcher } from '../dispatch/dispatcher.ts'
import { installFilterHooks } from '../filters/hooks.ts'
import { FilterManager } from '../filters/manager.ts'
import type { Mode } from '../config/modes.ts'
import type { Executor } from '../modes/executor.ts'
import { Executors } from '../modes/executors.ts'
import { Registry } from '../residency/registry.ts'
import { setEsbuildIdle } from '../loader/build.ts'
import { setFaultTracing } from '../loader/owner.ts'
import { replyWithError } from './error-reply.ts'
import { handleClientError } from './client-error.ts'
import { requestIdGenerator } from './request-id.ts'
import { Connections } from './connections.ts'
import { RequestBudget } from './request-budget.ts'
import { registerAdminRoutes, type ClusterAdmin } from './admin-routes.ts'
import { registerFastcgiApps } from './fastcgi-apps.ts'
import { registerCgiGateway } from './cgi-gateway.ts'
import { SERVER_SOFTWARE } from './software.ts'
import { Metrics } from '../ops/metrics.ts'
import { notReadyReason, registerHealthRoutes, type Lifecycle } from '../ops/health.ts'
import { DashboardStreams } from '../ops/dashboard-routes.ts'
import { History } from '../ops/history.ts'
import { processSnapshot, type ProcessSnapshot } from '../ops/snapshot.ts'
import { buildView, type View } from '../ops/view.ts'

export interface ResidentServer {
  app: FastifyInstance
  /** Requests in progress and the per-request limits (limits.*). */
  budget: RequestBudget
  /** The server's logger (fastify's own `app.log` is silent). */
  log: PinoLogger
  registry: Registry
  /** The filter chain: `current`, `describe()`, `reload(name)`, `reloadAll()`, `watchSet()`. */
  filters: FilterManager
  config: ResidentConfig
  /** prom-client metrics of this server (and the process), served at /_resident/metrics. */
  metrics: Metrics
  /** starting (not listening yet), serving, or draining (close() was called). */
  readonly lifecycle: Lifecycle
  /** What /_resident/ready answers: serving, and not over a memory limit with nothing to evict. */
  ready(): boolean
  /** This process's state for the dashboard (a cluster primary gathers one from each worker). */
  snapshot(): Promise<ProcessSnapshot>
  /** The dashboard's open event streams. */
  streams: DashboardStreams
  /** Stops accepting, drains in-flight requests (up to drainTimeout), disposes every generation. */
  close(): Promise<void>
}

export interface ServerOptions {
  logger?: PinoLogger
  /** Ready-made executors in place of the built-in ones, by mode (benchmarks wrap one this way). */
  executors?: Partial<Record<Mode, Executor>>
  /**
   * Install the filter hooks even when no filter is loaded at start-up, so that a reload can add
   * the first one (resident dev). Without it, a server that starts with no filter runs without
   * the hooks, and such a reload fails with RES_ERR_FILTERS_NEED_RESTART.
   */
  filterHooks?: boolean
  /** In a cluster worker: the dashboard of every process, gathered through the primary. */
  clusterView?: () => Promise<View>
  /** In a cluster worker: status, metrics and admin actions through the primary. */
  cluster?: ClusterAdmin
}

const EMPTY_QUERY = Object.freeze(Object.create(null) as Record<string, never>)
const noQuery = () => EMPTY_QUERY

/** Builds the fastify app: one wildcard route dispatching through Resident's own table. */
export async function buildServer(config: ResidentConfig, options: ServerOptions = {}): Promise<ResidentServer> {
  // Fastify gets no logger of its own: with one, it adds response listeners and a pino child to
  // every request (several µs each in bench/overhead), and a childLoggerFactory costs ≈ 1 µs more.
  // Its `request.log` stays its silent null logger; Resident's code logs through `requestLogger`,
  // made where a line may be written (see log/request-logger.ts).
  const log = options.logger ?? pino({ level: 'silent' })
  const app = Fastify({
    logger: false,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    genReqId: requestIdGenerator(config.requestIdHeader),
    return503OnClosing: false,
    // Slow clients (see docs/operators/security.md): the headers within headersTimeout, the whole
    // request within headersTimeout + bodyTimeout, checked often enough for those to mean what they
    // say (Node checks every 30 s by default); an idle keep-alive connection closes after
    // keepAliveTimeout. None of these is the command's deadline (requestTimeout).
    requestTimeout: config.headersTimeout + config.bodyTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
    http: {
      headersTimeout: config.headersTimeout,
      requestTimeout: config.headersTimeout + config.bodyTimeout,
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(Math.min(config.headersTimeout, config.bodyTimeout) / 4))),
    },
    forceCloseConnections: 'idle',
    // The dispatcher parses the query itself (linear, with parameterLimit, own keys only).
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 512, querystringParser: noQuery },
    clientErrorHandler: (err, socket) => handleClientError(err, socket, log),
    // Fastify's own refusals before routing (a percent-encoding that decodes to invalid UTF-8,
    // `%F3`): Resident's JSON error with a request id, like every other rejection.
    frameworkErrors: (e, request, reply) => { replyWithError(e, request, reply, config.development, log) },
  }) as unknown as FastifyInstance
  setEsbuildIdle(config.unload.esbuildIdle)
  setFaultTracing(config.faultTracing)
  const executors = new Executors({ config, log }, options.executors)
  executors.check(config)
  const registry = new Registry({ config, executors, log })
  const connections = new Connections(app.server, config.maxConnections, log, config.sendTimeout)
  const budget = new RequestBudget(app.server, config.limits)
  let closing = false
  const dispatcher = new Dispatcher(registry, config, log, () => closing)

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  app.setErrorHandler((e, request, reply) => replyWithError(e, request, reply, config.development, log))
  app.setNotFoundHandler((request, reply) => replyWithError(
    new ResidentError('RES_ERR_NOT_FOUND', `no extension serves ${request.method} ${request.url.split('?')[0]}`), request, reply, config.development, log))

  // Filters load before the hooks are installed: a filter that fails to load fails the start-up.
  const filters = new FilterManager(config, log)
  try {
    await filters.loadAll()
  } catch (e) {
    await app.close()
    throw e
  }
  installFilterHooks(app, filters, log, options.filterHooks ?? false)
  // After the filters' onRequest, so a refusal still gets their headers and their log line.
  budget.install(app)

  const lifecycle = (): Lifecycle => closing ? 'draining' : app.server.listening ? 'serving' : 'starting'
  const ready = () => notReadyReason(lifecycle(), registry, config) === null
  const metrics = new Metrics({ registry, ready, filters: () => filters.current.filters.length })
  registerHealthRoutes(app, ready)
  const history = new History()
  const snapshot = () => processSnapshot({ config, registry, filters, history, ready, lifecycle })
  const view = options.clusterView ?? (async () => buildView([await snapshot()]))
  const streams = new DashboardStreams(view)
  const unsubscribeStreams = registry.subscribe(() => streams.changed())
  const fastcgiApps = await registerFastcgiApps(app, config, log)
  registerAdminRoutes(app, {
    config, registry, filters, metrics, dashboard: { view, streams }, cluster: options.cluster, log,
    fastcgi: Object.keys(config.fastcgi.apps).length > 0 ? fastcgiApps.describe : undefined,
  })
  registerCgiGateway(app, { config, log, dispatcher, serverSoftware: SERVER_SOFTWARE })
  // The handler returns nothing and sends for itself; it makes a promise only when a step is async.
  // (Returning the reply from an async handler, fastify's advice, makes the promise adopt
  // `reply.then`, which attaches end-of-stream listeners to every response.)
  const fail = (reply: FastifyReply, e: unknown): void => {
    if (reply.sent) return
    reply.send(e instanceof Error ? e : new ResidentError('RES_ERR_COMMAND_FAILED', undefined, { cause: e }))
  }
  app.all('/*', (request, reply) => {
    let pending: void | Promise<void>
    try {
      pending = dispatcher.handle(request, reply)
    } catch (e) {
      fail(reply, e)
      return
    }
    if (pending !== undefined) pending.catch((e: unknown) => fail(reply, e))
  })

  await app.ready()

  let closed: Promise<void> | null = null
  return {
    app, budget, log, registry, filters, config, metrics, ready, snapshot, streams,
    get lifecycle() { return lifecycle() },
    close() {
      closed ??= (async () => {
        closing = true
        // One deadline for the whole stop: the server's drain and the registry's share it.
        const deadline = Date.now() + config.drainTimeout
        unsubscribeStreams()
        streams.close()
        let timer: NodeJS.Timeout | undefined
        const forced = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log.warn(`requests still running after ${config.drainTimeout} ms; closing their connections`)
            app.server.closeAllConnections?.()
            resolve()
          }, config.drainTimeout)
        })
        // Keep-alive connections whose last response finishes during the drain would keep the
        // server open until the timeout: close them as soon as they go idle.
        const reaper = setInterval(() => connections.closeIdle(), 50)
        await Promise.race([app.close(), forced])
        clearInterval(reaper)
        clearTimeout(timer)
        connections.close()
        await registry.close(deadline)
        await filters.close()
        fastcgiApps.close()
        metrics.close()
      })()
      return closed
    },
  }
}
