import { Filter, type AccessLogEntry, type FilterRequest } from 'resident-host'

/**
 * One line per request, from onLog, through this filter's own logger (pino JSON, or pretty in
 * development). Set `"config": { "format": "combined" }` for an Apache-style text line instead.
 */
export default class AccessLog extends Filter {
  static override priority = 'low' as const

  override onLog(_req: FilterRequest, e: AccessLogEntry) {
    if ((this.host.config as { format?: unknown }).format === 'combined') {
      const user = (e.user as { name?: string } | undefined)?.name ?? '-'
      this.host.log.info({}, `${e.clientAddress} - ${user} [${e.time}] "${e.method} ${e.originalUrl}" ${e.status} ${e.contentLength ?? '-'} ${e.durationMs}ms "${e.userAgent ?? '-'}"`)
      return
    }
    this.host.log.info({ access: e }, `${e.method} ${e.originalUrl} ${e.status} ${e.durationMs}ms`)
  }
}
