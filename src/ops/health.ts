import type { FastifyInstance } from 'fastify'
import type { ResidentConfig } from '../config/types.ts'
import type { Registry } from '../residency/registry.ts'

export type Lifecycle = 'starting' | 'serving' | 'draining'

/**
 * Why the server is not ready, or null when it is: still starting (not listening yet), draining
 * (shutting down), or over a memory limit with nothing left to evict (every resident extension
 * busy, none idle to unload).
 */
export function notReadyReason(lifecycle: Lifecycle, registry: Registry, config: ResidentConfig): 'starting' | 'draining' | 'memory' | null {
  if (lifecycle !== 'serving') return lifecycle
  const s = registry.evictor.last ?? registry.evictor.sample()
  if (s.ratio < config.memory.highWatermark) return null
  for (const slot of registry.slots.values()) {
    if (slot.current && slot.inFlight === 0 && slot.waiting === 0 && !slot.loading) return null
  }
  return 'memory'
}

/**
 * GET /_resident/health (liveness: the process answers) and GET /_resident/ready (readiness, 503
 * when not ready). Outside the admin surface, so a load balancer needs no token; the bodies say
 * nothing but the verdict.
 */
export function registerHealthRoutes(app: FastifyInstance, ready: () => boolean): void {
  const noStore = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' }
  app.get('/_resident/health', (_request, reply) => { reply.headers(noStore).send('{"status":"ok"}') })
  app.get('/_resident/ready', (_request, reply) => {
    const ok = ready()
    reply.code(ok ? 200 : 503).headers(noStore).send(ok ? '{"ready":true}' : '{"ready":false}')
  })
}
