import type { FastifyInstance } from 'fastify'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { isModuleName } from '../config/names.ts'
import type { FilterManager } from '../filters/manager.ts'
import type { Registry } from '../residency/registry.ts'
import { checkAdmin } from './admin-guard.ts'
import { Metrics } from '../ops/metrics.ts'
import { registerDashboardRoutes, type DashboardStreams } from '../ops/dashboard-routes.ts'
import type { ProcessSnapshot } from '../ops/snapshot.ts'
import type { View } from '../ops/view.ts'
import { extensionStatus, hostStatus } from '../residency/status.ts'
import { reloadAll } from '../watch/reload-all.ts'
import type { Logger } from '../sdk/types.ts'

/** An admin action on this process; in a cluster the primary rolls it through every process. */
export type AdminAction =
  | { action: 'reload' | 'unload' | 'load'; name: string }
  | { action: 'reload-filters'; name: string | null }
  | { action: 'reload-all' }

/** What a cluster worker's admin surface asks of the primary (see src/cluster/). */
export interface ClusterAdmin {
  /** Every process's snapshot. */
  snapshots(): Promise<ProcessSnapshot[]>
  /** The metrics of every process, summed, as exposition text. */
  metrics(): Promise<string>
  /** Runs the action on every process, one after the other; resolves with each process's answer. */
  act(a: AdminAction): Promise<Array<{ pid: number; value: unknown }>>
}

export interface AdminContext {
  config: ResidentConfig
  registry: Registry
  filters?: FilterManager
  metrics?: Metrics
  /** The dashboard's data (of this process, or of every process of a cluster) and its event streams. */
  dashboard?: { view: () => Promise<View>; streams: DashboardStreams }
  /** Set in a cluster worker: status, metrics and actions cover every process. */
  cluster?: ClusterAdmin
  log?: Logger
  /** The FastCGI apps' backends, for the status JSON. */
  fastcgi?: () => Record<string, unknown>
}

const PREFIX = '/_resident'
const SILENT = { info() {}, error() {}, warn() {}, debug() {}, trace() {}, fatal() {} } as unknown as Logger

function extensionName(params: unknown): string {
  const name = String((params as { name?: unknown }).name ?? '')
  if (!isModuleName(name)) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${name}"`)
  return name
}

/** Runs an admin action on this process and returns what the API answers for it. */
export async function localAction(ctx: Pick<AdminContext, 'registry' | 'filters' | 'log'>, a: AdminAction): Promise<unknown> {
  switch (a.action) {
    case 'load': {
      // An operator asking for a load means "try now", even while rapid-fail protection waits.
      ctx.registry.resetFailure(a.name)
      const gen = await ctx.registry.acquire(a.name)
      if (!gen) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${a.name}"`)
      ctx.registry.release(gen)
      return { name: a.name, state: 'resident', generation: gen.id }
    }
    case 'unload':
      return { name: a.name, unloaded: await ctx.registry.unload(a.name, 'admin') }
    case 'reload': {
      const gen = await ctx.registry.reload(a.name)
      return { name: a.name, state: 'resident', generation: gen.id }
    }
    case 'reload-filters':
      if (a.name === null) await ctx.filters?.reloadAll()
      else await ctx.filters?.reload(a.name)
      return { filters: ctx.filters?.describe() ?? [] }
    case 'reload-all':
      return reloadAll(ctx.registry, ctx.log ?? SILENT, ctx.filters ? [ctx.filters] : [])
  }
}

/** The protected admin surface under /_resident (loopback only unless admin.token is set). */
export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  // In a cluster an action covers every process: the answer lists each one's.
  const act = async (a: AdminAction) => {
    if (!ctx.cluster) return localAction(ctx, a)
    const processes = await ctx.cluster.act(a)
    return { ...(processes[0]?.value as object ?? {}), processes }
  }

  app.register(async (admin) => {
    const policy = { token: ctx.config.admin.token, hosts: ctx.config.admin.hosts, listenHost: ctx.config.host }
    admin.addHook('onRequest', async (request) => checkAdmin(request, policy))
    // The admin surface shares the extensions' origin: nothing it answers may run script or be
    // sniffed into a page. A route serving a page of its own sets its own policy.
    admin.addHook('onSend', (_request, reply, payload, done) => {
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
      if (!reply.hasHeader('x-content-type-options')) reply.header('x-content-type-options', 'nosniff')
      done(null, payload)
    })

    if (ctx.dashboard) registerDashboardRoutes(admin, ctx.dashboard.view, ctx.dashboard.streams)

    admin.get('/status', async () => {
      // Every extension on disk is listed, `unloaded` until its first request.
      await ctx.registry.discover()
      return {
        host: hostStatus(ctx.registry, ctx.config),
        extensions: [...ctx.registry.slots.values()].map((s) => extensionStatus(ctx.registry, s)),
        filters: ctx.filters?.status() ?? [],
        ...(ctx.fastcgi ? { fastcgi: ctx.fastcgi() } : {}),
        ...(ctx.cluster ? { cluster: { processes: await ctx.cluster.snapshots() } } : {}),
      }
    })

    admin.get('/metrics', async (_request, reply) => {
      const text = ctx.cluster ? await ctx.cluster.metrics() : ctx.metrics ? await ctx.metrics.text() : ''
      reply.header('content-type', Metrics.contentType).header('cache-control', 'no-store')
      return text
    })

    // Filters: rebuild one (or all) beside the running chain; swapped only on success.
    admin.post('/filters/reload', async () => act({ action: 'reload-filters', name: null }))

    admin.post('/filters/:name/reload', async (request) => {
      const name = String((request.params as { name?: unknown }).name ?? '')
      if (!isModuleName(name)) throw new ResidentError('RES_ERR_NOT_FOUND', `no filter named "${name}"`)
      return act({ action: 'reload-filters', name })
    })

    admin.post('/extensions/:name/load', async (request) => act({ action: 'load', name: extensionName(request.params) }))
    admin.post('/extensions/:name/unload', async (request) => act({ action: 'unload', name: extensionName(request.params) }))
    admin.post('/extensions/:name/reload', async (request) => act({ action: 'reload', name: extensionName(request.params) }))
  }, { prefix: PREFIX })
}
