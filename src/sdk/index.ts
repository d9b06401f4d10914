// The package entry authors import from: `import { Extension, HttpError, param } from 'resident-host'`.
export { Extension } from './extension.ts'
export { HttpError, isHttpError } from './http-error.ts'
export type { HttpErrorOptions } from './http-error.ts'
export { param } from './params.ts'
export { isValidRequestId } from './request-id.ts'
export type {
  ArrayParam, BooleanParam, CommandMap, CommandSpec, EnumParam, HttpMethod, IntegerParam, NumberParam,
  ParamSpec, ParamValue, Params, StringParam,
} from './params.ts'
export type { CommandRequest, ExtensionHost, Headers, Logger, TimerHandle, UnloadReason } from './types.ts'
export { Filter, HANDLED, NOTIFICATIONS } from './filter.ts'
export type {
  AccessLogEntry, EndOfRequest, FilterAnswer, FilterHost, FilterPriority, FilterRequest, FilterResponse, NotificationName,
} from './filter.ts'
export { ServerSentEvent, ndjson, sse } from './streams.ts'
export type { EventStreamOptions, FormattedStream } from './streams.ts'
