import { NOTIFICATIONS, type Filter, type NotificationName } from '../sdk/filter.ts'
import type { LoadedFilter } from './load.ts'
import type { PathMatcher } from './paths.ts'

/** One filter's method for one notification, resolved at load so a request does no lookups. */
export interface Step {
  readonly name: string
  readonly instance: Filter
  readonly fn: (this: Filter, req: never, arg: never) => unknown
  readonly matches: PathMatcher | null
}

const RANK = { high: 0, medium: 1, low: 2 } as const
// IIS 7 runs the response side in reverse, so the filter that saw the request first sees the
// response last (it wraps the others, as middleware does).
const REVERSED: ReadonlySet<NotificationName> = new Set(['onAccessDenied', 'onSendResponse'])

/** Priority, then the config's `filters.order`, then name: a total, deterministic order. */
export function sortFilters(filters: readonly LoadedFilter[], order: readonly string[]): LoadedFilter[] {
  const pos = (n: string) => { const i = order.indexOf(n); return i === -1 ? Number.MAX_SAFE_INTEGER : i }
  return [...filters].sort((a, b) =>
    RANK[a.priority] - RANK[b.priority] || pos(a.name) - pos(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * An immutable, ordered set of loaded filters with one precomputed array of steps per
 * notification. A request snapshots the chain in force when it arrives and uses it to the end,
 * so a reload never changes the filters of a request half-way. The chain counts the requests
 * using it, so that filters replaced by a reload are disposed only once those have finished.
 */
export class FilterChain {
  readonly filters: readonly LoadedFilter[]
  readonly empty: boolean
  readonly onRequest: readonly Step[]
  readonly onUrlMap: readonly Step[]
  readonly onAuthenticate: readonly Step[]
  readonly onAccessDenied: readonly Step[]
  readonly onSendResponse: readonly Step[]
  readonly onEndOfRequest: readonly Step[]
  readonly onLog: readonly Step[]
  /** The deadline of one async notification, in ms (the config's requestTimeout); 0 = none. */
  readonly timeoutMs: number
  /** Requests that started on this chain and have not finished. */
  inflight = 0
  #onDrained: (() => void) | null = null

  constructor(filters: readonly LoadedFilter[], order: readonly string[], timeoutMs = 0) {
    this.timeoutMs = timeoutMs
    this.filters = sortFilters(filters, order)
    this.empty = this.filters.length === 0
    const steps = (event: NotificationName): Step[] => {
      const out: Step[] = []
      for (const f of this.filters) {
        const fn = (f.instance as unknown as Record<string, unknown>)[event]
        if (typeof fn === 'function') out.push({ name: f.name, instance: f.instance, fn: fn as Step['fn'], matches: f.matches })
      }
      return REVERSED.has(event) ? out.reverse() : out
    }
    this.onRequest = steps('onRequest')
    this.onUrlMap = steps('onUrlMap')
    this.onAuthenticate = steps('onAuthenticate')
    this.onAccessDenied = steps('onAccessDenied')
    this.onSendResponse = steps('onSendResponse')
    this.onEndOfRequest = steps('onEndOfRequest')
    this.onLog = steps('onLog')
  }

  acquire(): void { this.inflight++ }

  release(): void {
    if (--this.inflight === 0 && this.#onDrained) {
      const fn = this.#onDrained
      this.#onDrained = null
      fn()
    }
  }

  /** Calls `fn` once no request uses this chain any more (at once when none does). */
  whenDrained(fn: () => void): void {
    if (this.inflight === 0) fn()
    else this.#onDrained = fn
  }

  /** The order in force, one line per filter: "1. request-id (high) onRequest, onSendResponse [paths]". */
  describe(): string[] {
    return this.filters.map((f, i) => {
      const events = NOTIFICATIONS.filter((n) => typeof (f.instance as unknown as Record<string, unknown>)[n] === 'function')
      return `${i + 1}. ${f.name} (${f.priority}) ${events.join(', ') || 'no notifications'}${f.matches ? ' [paths]' : ''}`
    })
  }
}
