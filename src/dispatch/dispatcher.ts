import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { beforeDispatch } from '../filters/dispatch.ts'
import type { Registry } from '../residency/registry.ts'
import { parseBody, parseForm } from './body.ts'
import { DispatchedRequest } from './command-request.ts'
import { Deadlines } from './deadlines.ts'
import { coerceParams, mergeInputs } from './params.ts'
import { sendResult } from './respond.ts'
import { findCommand, parseTarget } from './route.ts'

const EMPTY = Buffer.alloc(0)

/**
 * The one wildcard route's handler: URL → extension + command → parameters → executor → response.
 * The generation a request uses is leased for the whole response (streams included) and released
 * when the response closes.
 */
export class Dispatcher {
  readonly #registry: Registry
  readonly #deadlines: Deadlines
  readonly #closing: () => boolean

  /** `closing` says when the server is shutting down (new requests then get a 503). */
  constructor(registry: Registry, config: ResidentConfig, closing: () => boolean = () => false) {
    this.#registry = registry
    this.#deadlines = new Deadlines(config.requestTimeout)
    this.#closing = closing
  }

  async handle(request: FastifyRequest, reply: FastifyReply, url: string = request.url): Promise<FastifyReply> {
    if (this.#closing()) throw new ResidentError('RES_ERR_UNAVAILABLE', undefined, { headers: { connection: 'close' } })
    const filters = request.filters ?? null
    if (filters !== null) {
      let mapped = beforeDispatch(filters, url)
      if (mapped instanceof Promise) mapped = await mapped
      if (typeof mapped !== 'string') return sendResult(reply, mapped)
      url = mapped
    }
    const target = parseTarget(url)
    if (!target) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension serves ${url.split('?')[0]}`)
    const gen = this.#registry.tryAcquire(target.extension) ?? await this.#registry.acquire(target.extension)
    if (!gen) throw new ResidentError('RES_ERR_NOT_FOUND', `no extension named "${target.extension}"`)
    let released = false
    const started = performance.now()
    const release = () => {
      if (released) return
      released = true
      this.#registry.release(gen, performance.now() - started)
    }
    let commandRequest: DispatchedRequest | null = null
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) commandRequest?.abort(new Error('the client closed the connection'))
      release()
    })
    const info = findCommand(gen.module.table, target.command)
    if (!info) {
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
    const { body, contentType } = parseBody(rawBody, request.headers['content-type'], info.accepts)
    const query = url === request.url ? request.query as Record<string, string | string[]> : parseForm(target.query)
    const input = mergeInputs(query, body)
    const params = info.params ? coerceParams(info.params, input) : input
    commandRequest = new DispatchedRequest({
      id: request.id,
      method: request.method,
      url,
      path: target.path,
      query,
      headers: request.headers,
      body,
      rawBody,
      contentType,
      clientAddress: request.ip,
      user: filters !== null ? filters.user : undefined,
      extension: target.extension,
      command: info.name,
      log: request.log,
    })
    const cr = commandRequest
    // Past the deadline the client gets its 504 at once; the command, told through its signal,
    // may still finish, and its result is then dropped.
    const deadline = this.#deadlines.start((err) => {
      cr.abort(err)
      if (!reply.sent) reply.send(err)
    })
    let result: unknown
    try {
      result = await gen.module.invoke(info, params, cr)
    } finally {
      this.#deadlines.stop(deadline)
    }
    if (reply.sent || reply.raw.destroyed) return reply
    try {
      return sendResult(reply, result)
    } catch (e) {
      if (e instanceof ResidentError) throw e
      throw new ResidentError('RES_ERR_BAD_RESULT', `the command's result cannot be sent: ${(e as Error).message}`, { cause: e })
    }
  }
}
