import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import { DASHBOARD_CSS, DASHBOARD_ICON, DASHBOARD_JS } from './dashboard-assets.ts'
import { DASHBOARD_CSP, renderDashboard } from './dashboard-page.ts'
import type { View } from './view.ts'

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/**
 * The dashboard's event streams: one `view` event a second to every open page (one view computed
 * for all of them), and one at once when an extension is loaded or unloaded. The timer runs only
 * while a page is open.
 */
export class DashboardStreams {
  readonly #clients = new Set<ServerResponse>()
  readonly #view: () => Promise<View>
  #timer: NodeJS.Timeout | null = null
  #soon: NodeJS.Timeout | null = null
  #busy = false

  constructor(view: () => Promise<View>) {
    this.#view = view
  }

  get clients(): number { return this.#clients.size }

  add(res: ServerResponse): void {
    this.#clients.add(res)
    res.on('close', () => {
      this.#clients.delete(res)
      if (this.#clients.size === 0 && this.#timer) { clearInterval(this.#timer); this.#timer = null }
    })
    this.#timer ??= setInterval(() => void this.#push(), 1000)
    void this.#push()
  }

  /** Something changed (a load, an unload): push soon, once for a burst of changes. */
  changed(): void {
    if (this.#clients.size === 0 || this.#soon) return
    this.#soon = setTimeout(() => { this.#soon = null; void this.#push() }, 50)
  }

  async #push(): Promise<void> {
    if (this.#busy || this.#clients.size === 0) return
    this.#busy = true
    try {
      const data = `event: view\ndata: ${JSON.stringify(await this.#view())}\n\n`
      for (const res of this.#clients) if (!res.writableEnded) res.write(data)
    } catch {
      // A view that cannot be made now (a cluster worker restarting) is skipped; the next tick tries again.
    } finally {
      this.#busy = false
    }
  }

  /** Ends every stream (shutdown: an open page must not hold the drain). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer)
    if (this.#soon) clearTimeout(this.#soon)
    this.#timer = this.#soon = null
    for (const res of this.#clients) res.end()
    this.#clients.clear()
  }
}

/** GET /_resident/ (the page), its script and stylesheet, and /_resident/events (Server-Sent Events). Registered inside the admin scope. */
export function registerDashboardRoutes(admin: FastifyInstance, view: () => Promise<View>, streams: DashboardStreams): void {
  admin.get('/', async (_request, reply) => {
    reply.headers(PAGE_HEADERS)
    return renderDashboard(await view())
  })
  admin.get('/dashboard.js', (_request, reply) => {
    reply.headers({ 'content-type': 'text/javascript; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).send(DASHBOARD_JS)
  })
  admin.get('/dashboard.css', (_request, reply) => {
    reply.headers({ 'content-type': 'text/css; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).send(DASHBOARD_CSS)
  })
  admin.get('/favicon.svg', (_request, reply) => {
    reply.headers({ 'content-type': 'image/svg+xml', 'x-content-type-options': 'nosniff', 'cache-control': 'max-age=86400' }).send(DASHBOARD_ICON)
  })
  admin.get('/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    })
    res.write('retry: 2000\n\n')
    request.raw.socket.setTimeout(0)
    streams.add(res)
  })
}
