import { FILTER_BASE } from './brand.ts'
import type { ExtensionHost, Headers, Logger, UnloadReason } from './types.ts'

/** A filter's handle on the host: the same as an extension's (its logger, `filters.modules.<name>.config`, tracked timers). */
export type FilterHost = ExtensionHost

/** `static priority`: high runs first on the request side (and last on the response side). */
export type FilterPriority = 'high' | 'medium' | 'low'

/**
 * Return this from a notification to skip the remaining filters for this notification only
 * (ISAPI's SF_STATUS_REQ_HANDLED_NOTIFICATION). The request goes on normally.
 */
export const HANDLED: unique symbol = Symbol.for('resident.filter.handled')

/**
 * What a notification may answer:
 * - `undefined` (or nothing): go on with the next filter;
 * - a web `Response`: finish the request now with it (SF_STATUS_REQ_FINISHED);
 * - `HANDLED`: skip the rest of this notification's filters;
 * - throw: an `HttpError` answers with its status; anything else is a 500 with the request id.
 * `onUrlMap` may also return a string, the new URL; `onLog` may return `false` to suppress the entry.
 */
export type FilterAnswer = void | undefined | Response | typeof HANDLED
export type MaybePromise<T> = T | Promise<T>

/** One request as filters see it. The same object is passed to every notification of the request. */
export interface FilterRequest {
  readonly id: string
  readonly method: string
  /** The URL (path and query) as it stands now: after onUrlMap it is the mapped one. */
  readonly url: string
  /** The URL as the client sent it. */
  readonly originalUrl: string
  /** The path part of `url`. */
  readonly path: string
  /** Request headers (lower-case names); onRequest may change them. */
  readonly headers: Headers
  readonly clientAddress: string
  /** The identity onAuthenticate attached; the command reads it as `request.user`. */
  user: unknown
  /** Scratch space shared by the filters of this request. */
  readonly state: Record<string, unknown>
  readonly log: Logger
  /** performance.now() when the request arrived. */
  readonly startTime: number
}

/** The response on its way out (onAccessDenied, onSendResponse). Changes apply to what is sent. */
export interface FilterResponse {
  status: number
  /**
   * The body as it will be sent: a string (JSON and text results, error bodies), a Buffer, a
   * Readable stream (streamed results; replace it with a transformed stream) or null.
   */
  body: string | Buffer | NodeJS.ReadableStream | null
  getHeader(name: string): string | string[] | number | undefined
  setHeader(name: string, value: string | string[] | number): void
  removeHeader(name: string): void
  /** The body parsed as JSON when it is a JSON string or Buffer; undefined otherwise. */
  json(): unknown
}

/** What onEndOfRequest receives once the response is finished or the client went away. */
export interface EndOfRequest {
  status: number
  /** Milliseconds from arrival to the end of the response (or the abort). */
  durationMs: number
  /** 'ok' (< 400), 'client-error' (4xx), 'error' (5xx) or 'aborted' (the client closed the connection first). */
  outcome: 'ok' | 'client-error' | 'error' | 'aborted'
  aborted: boolean
}

/** The structured access-log entry onLog receives; filters may add fields or change them. */
export interface AccessLogEntry {
  time: string
  requestId: string
  method: string
  url: string
  originalUrl: string
  status: number
  durationMs: number
  outcome: EndOfRequest['outcome']
  clientAddress: string
  userAgent: string | undefined
  contentLength: number | undefined
  user: unknown
  [field: string]: unknown
}

/**
 * The base of every filter. A filter is loaded at start-up, stays resident and its notification
 * methods run for every request (or only those whose URL matches `static paths`). Implement only
 * the notifications you need: the others cost nothing.
 * @example
 * export default class PoweredBy extends Filter {
 *   onSendResponse(req: FilterRequest, res: FilterResponse) { res.setHeader('x-powered-by', 'Resident') }
 * }
 */
export abstract class Filter {
  static readonly [FILTER_BASE] = true
  /** high / medium (default) / low; ties are broken by `filters.order` in the config, then by name. */
  static priority?: FilterPriority
  /**
   * URL path patterns this filter is limited to: `*` matches within a segment, `**` across segments
   * (`/secret`, `/secret/**`); a RegExp is tested against the path. Default: every request.
   */
  static paths?: ReadonlyArray<string | RegExp>

  readonly host: FilterHost

  constructor(host: FilterHost) {
    this.host = host
  }

  /** Runs once at load; a throw fails the load (and the start-up). */
  init?(): void | Promise<void>
  /** Runs when the filter is unloaded (reload, shutdown). */
  dispose?(reason: UnloadReason): void | Promise<void>

  /** [PREPROC_HEADERS] First of all, before the body is read: read and change request headers. */
  onRequest?(req: FilterRequest): MaybePromise<FilterAnswer>
  /** [URL_MAP] Return a new URL (path and query) to dispatch the request to. */
  onUrlMap?(req: FilterRequest, url: string): MaybePromise<FilterAnswer | string>
  /** [AUTHENTICATION] Set `req.user`, or deny (throw an HttpError 401/403, or return a Response). */
  onAuthenticate?(req: FilterRequest): MaybePromise<FilterAnswer>
  /** [ACCESS_DENIED] Any 401 or 403 about to be sent; runs before onSendResponse, in reverse order. */
  onAccessDenied?(req: FilterRequest, res: FilterResponse): MaybePromise<FilterAnswer>
  /** [SEND_RESPONSE] Change status, headers and body before sending; runs in reverse order. */
  onSendResponse?(req: FilterRequest, res: FilterResponse): MaybePromise<FilterAnswer>
  /** [END_OF_REQUEST] After the response finished, or the client went away. */
  onEndOfRequest?(req: FilterRequest, end: EndOfRequest): MaybePromise<void | typeof HANDLED>
  /** [LOG] The access-log entry: add fields, or return false to suppress it for the filters after this one. */
  onLog?(req: FilterRequest, entry: AccessLogEntry): MaybePromise<void | false | typeof HANDLED>
}

/**
 * The notification names, in request order. Decision: the issue's names, kept close to ISAPI's
 * (PREPROC_HEADERS → onRequest, URL_MAP → onUrlMap, AUTHENTICATION → onAuthenticate, ACCESS_DENIED →
 * onAccessDenied, SEND_RESPONSE/SEND_RAW_DATA → onSendResponse, END_OF_REQUEST → onEndOfRequest,
 * LOG → onLog) so that ISAPI readers find their way; READ_RAW_DATA has no counterpart (bodies are
 * streams, and its READ_NEXT verb is what deadlocked IIS filters). Interest is declared by
 * implementing a method, read once at load (ISAPI's notification mask).
 */
export const NOTIFICATIONS = [
  'onRequest', 'onUrlMap', 'onAuthenticate', 'onAccessDenied', 'onSendResponse', 'onEndOfRequest', 'onLog',
] as const
export type NotificationName = typeof NOTIFICATIONS[number]
