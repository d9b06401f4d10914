import { Buffer } from 'node:buffer'
import path from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import type { ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import type { Dispatcher } from '../dispatch/dispatcher.ts'
import { beforeDispatch } from '../filters/dispatch.ts'
import { baseEnvironment, buildMetaVariables } from '../modes/cgi/meta.ts'
import { runCgi, type CgiStarted } from '../modes/cgi/process.ts'
import { findBin, resolveScript, type CgiBin } from '../modes/cgi/resolve.ts'
import { requestLogger } from '../log/request-logger.ts'
import { fromWebResponse } from '../modes/results.ts'
import { sendOutcome } from '../modes/send.ts'

/** How many local redirects (`Location: /path` alone) one request may follow. */
const MAX_LOCAL_REDIRECTS = 5

export interface GatewayDeps {
  config: ResidentConfig
  log: PinoLogger
  dispatcher: Dispatcher
  serverSoftware: string
}

/**
 * The CGI gateway: each `cgi.bin` prefix gets a route in a scope of its own whose body parser
 * leaves the body unread, so it streams to the program's stdin. The filter hooks installed on the
 * root before this runs apply here too (onRequest, onSendResponse, onLog…); onUrlMap and
 * onAuthenticate run in the handler, as the dispatcher runs them for extensions. A URL a filter
 * maps out of the CGI prefixes goes to the dispatcher.
 */
export function registerCgiGateway(app: FastifyInstance, deps: GatewayDeps): void {
  const { config } = deps
  if (config.cgi.bin.length === 0) return
  const base = baseEnvironment(process.env, config.cgi.passEnv, config.cgi.env)
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    // Leave the body in the request stream: the handler pipes it to the program.
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined))
    // Not an async handler: fastify would send an empty body when its promise resolves before a
    // streamed response has sent its headers. Errors go to the error handler through reply.send.
    const handler = (request: FastifyRequest, reply: FastifyReply): void => {
      handle(request, reply, deps, base).catch((e: unknown) => { if (!reply.sent) reply.send(e) })
    }
    for (const bin of config.cgi.bin) scope.all(`${bin.prefix}*`, handler)
  })
}

async function handle(request: FastifyRequest, reply: FastifyReply, deps: GatewayDeps, base: Record<string, string>): Promise<void> {
  let url = request.url
  const filters = request.filters ?? null
  if (filters !== null) {
    const mapped = await beforeDispatch(filters, url)
    if (typeof mapped !== 'string') { sendOutcome(reply, fromWebResponse(mapped), false); return }
    url = mapped
  }
  let body: Buffer | FastifyRequest['raw'] | null = await requestBody(request, deps.config.bodyLimit)
  for (let hops = 0; ; hops++) {
    const pathPart = url.split('?', 1)[0]!
    const bin = findBin(deps.config.cgi.bin, pathPart)
    if (bin === null) {
      // A filter (or a local redirect) sent the request outside the CGI folders.
      if (body !== null && !Buffer.isBuffer(body)) body.resume()
      const pending = deps.dispatcher.handle(request, reply, url)
      if (pending) await pending
      return
    }
    const started = await run(request, reply, deps, base, bin, url, body)
    if (started.head.kind !== 'local-redirect') { send(reply, started); return }
    // §6.2.2: the server answers the new path itself, as a GET without the body.
    started.kill()
    started.body.resume()
    if (hops + 1 >= MAX_LOCAL_REDIRECTS) {
      throw new ResidentError('RES_ERR_CGI_BAD_OUTPUT', `${pathPart}: more than ${MAX_LOCAL_REDIRECTS} local redirects`)
    }
    url = started.head.location!
    request.raw.method = 'GET'
    body = null
    if (filters !== null) filters.setUrl(url)
  }
}

/**
 * The request body as the program will read it. With a Content-Length it streams; a chunked body
 * is read whole (up to bodyLimit) first, since CONTENT_LENGTH must be known before the program
 * starts (RFC 3875 §4.2); without either there is no body.
 */
async function requestBody(request: FastifyRequest, limit: number): Promise<Buffer | FastifyRequest['raw'] | null> {
  const raw = request.raw
  const length = request.headers['content-length']
  if (length !== undefined) {
    const n = Number(length)
    if (n > limit) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the body is ${n} bytes; the limit is ${limit}`)
    return n === 0 ? null : raw
  }
  if (request.headers['transfer-encoding'] === undefined) return null
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the body is more than ${limit} bytes`, { headers: { connection: 'close' } })
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

function remoteUser(user: unknown): string | null {
  if (typeof user === 'string') return user
  if (typeof user === 'object' && user !== null) {
    const u = user as { name?: unknown; id?: unknown }
    if (typeof u.name === 'string') return u.name
    if (typeof u.id === 'string') return u.id
  }
  return null
}

async function run(
  request: FastifyRequest, reply: FastifyReply, deps: GatewayDeps, base: Record<string, string>,
  bin: CgiBin, url: string, body: Buffer | FastifyRequest['raw'] | null,
): Promise<CgiStarted> {
  const q = url.indexOf('?')
  const pathPart = q === -1 ? url : url.slice(0, q)
  const script = await resolveScript(bin, pathPart, deps.config.cgi.interpreters)
  const socket = request.raw.socket
  const host = request.headers.host ?? ''
  const serverName = host === '' ? (socket.localAddress ?? '') : host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
  const contentLength = body === null ? null : Buffer.isBuffer(body) ? body.length : Number(request.headers['content-length'])
  const env = buildMetaVariables({
    method: request.method,
    scriptName: script.scriptName,
    pathInfo: script.pathInfo,
    pathTranslated: script.pathInfo === '' ? null : bin.dir + script.pathInfo,
    queryString: q === -1 ? '' : url.slice(q + 1),
    requestUri: url,
    headers: request.headers,
    contentLength,
    remoteAddr: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? null,
    serverAddr: socket.localAddress ?? '',
    serverPort: socket.localPort ?? 0,
    serverName,
    serverProtocol: `HTTP/${request.raw.httpVersion}`,
    scheme: (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
    serverSoftware: deps.serverSoftware,
    remoteUser: remoteUser(request.filters?.user),
    scriptFilename: script.file,
    documentRoot: bin.dir,
  }, base, {
    passAuthorization: deps.config.cgi.passAuthorization,
    // php-cgi built with force-cgi-redirect refuses to run without it: it proves a server started it.
    extra: { REDIRECT_STATUS: '200' },
  })
  const controller = new AbortController()
  const raw = reply.raw
  const onClose = () => { if (!raw.writableFinished) controller.abort() }
  raw.once('close', onClose)
  const log = requestLogger(deps.log, request.id)
  const started = await runCgi({
    name: script.scriptName,
    program: script.interpreter ?? script.file,
    args: script.interpreter === null ? [] : [script.file],
    env,
    cwd: path.dirname(script.file),
    body,
    limits: { maxHeaderBytes: deps.config.cgi.maxHeaderSize, maxOutputBytes: deps.config.cgi.maxOutput, timeout: deps.config.cgi.timeout },
    signal: controller.signal,
    spawn: deps.config.cgi.spawn,
    log,
  }).catch((e: unknown) => { raw.off('close', onClose); throw e })
  started.body.once('error', (e: Error) => {
    // After the head: the response is cut off, and the reason is logged.
    if (raw.headersSent) log.warn({ err: e }, e.message)
  })
  started.body.once('end', () => raw.off('close', onClose))
  return started
}

function send(reply: FastifyReply, started: CgiStarted): void {
  const { head } = started
  reply.code(head.status)
  if (head.reason !== null) reply.raw.statusMessage = head.reason
  const grouped = new Map<string, string[]>()
  for (const [name, value] of head.headers) {
    const list = grouped.get(name)
    if (list) list.push(value)
    else grouped.set(name, [value])
  }
  for (const [name, values] of grouped) reply.header(name, name === 'set-cookie' ? values : values.join(', '))
  if (head.contentType === null && started.hasBody) {
    // A body without a type is not guessed at: bytes, and the browser told not to sniff.
    reply.header('content-type', 'application/octet-stream').header('x-content-type-options', 'nosniff')
  }
  reply.send(started.body)
}
