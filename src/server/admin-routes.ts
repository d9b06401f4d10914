import type { FastifyInstance } from 'fastify'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { isModuleName } from '../loader/discover.ts'
import type { FilterManager } from '../filters/manager.ts'
import type { Registry } from '../residency/registry.ts'
import { checkAdmin } from './admin-guard.ts'
import { Metrics } from '../ops/metrics.ts'
import { extensionStatus, hostStatus } from '../residency/status.ts'

export interface AdminContext { config: ResidentConfig; registry: Registry; filters?: FilterManager; metrics?: Metrics; fastcgi?: () => Record<string, unknown> }

const PREFIX = '/_resident'

function extensionName(params: unknown): string {
  const name = String((params as { name?: unknown }).name ?? '')
  if (!isModuleName(name)) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${name}"`)
  return name
}

/** The protected admin surface under /_resident (loopback only unless admin.token is set). */
export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.register(async (admin) => {
    const policy = { token: ctx.config.admin.token, hosts: ctx.config.admin.hosts, listenHost: ctx.config.host }
    admin.addHook('onRequest', async (request) => checkAdmin(request, policy))

    admin.get('/status', async () => ({
      host: hostStatus(ctx.registry, ctx.config),
      extensions: [...ctx.registry.slots.values()].map((s) => extensionStatus(ctx.registry, s)),
      filters: ctx.filters?.status() ?? [],
      ...(ctx.fastcgi ? { fastcgi: ctx.fastcgi() } : {}),
    }))

    admin.get('/metrics', async (_request, reply) => {
      const text = ctx.metrics ? await ctx.metrics.text() : ''
      reply.header('content-type', Metrics.contentType).header('cache-control', 'no-store')
      return text
    })

    // Filters: rebuild one (or all) beside the running chain; swapped only on success.
    admin.post('/filters/reload', async () => {
      await ctx.filters?.reloadAll()
      return { filters: ctx.filters?.describe() ?? [] }
    })

    admin.post('/filters/:name/reload', async (request) => {
      const name = String((request.params as { name?: unknown }).name ?? '')
      if (!isModuleName(name)) throw new ResidentError('RES_ERR_NOT_FOUND', `no filter named "${name}"`)
      await ctx.filters?.reload(name)
      return { filters: ctx.filters?.describe() ?? [] }
    })

    admin.post('/extensions/:name/load', async (request) => {
      const name = extensionName(request.params)
      // An operator asking for a load means "try now", even while rapid-fail protection waits.
      ctx.registry.resetFailure(name)
      const gen = await ctx.registry.acquire(name)
      if (!gen) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${name}"`)
      ctx.registry.release(gen)
      return { name, state: 'resident', generation: gen.id }
    })

    admin.post('/extensions/:name/unload', async (request) => {
      const name = extensionName(request.params)
      const unloaded = await ctx.registry.unload(name, 'admin')
      return { name, unloaded }
    })

    admin.post('/extensions/:name/reload', async (request) => {
      const name = extensionName(request.params)
      const gen = await ctx.registry.reload(name)
      return { name, state: 'resident', generation: gen.id }
    })
  }, { prefix: PREFIX })
}
