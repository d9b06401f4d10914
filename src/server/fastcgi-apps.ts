import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger as PinoLogger } from 'pino'
import type { FastcgiAppSettings, ResidentConfig } from '../config/types.ts'
import { ResidentError } from '../errors.ts'
import { beforeDispatch } from '../filters/dispatch.ts'
import { fromWebResponse } from '../modes/results.ts'
import { sendOutcome } from '../modes/send.ts'
import { FcgiClient, FcgiClientError } from '../modes/fastcgi/client.ts'
import { cgiEnv, ScriptPathError, splitScriptPath } from '../modes/gateway/cgi-env.ts'
import { SERVER_SOFTWARE } from './software.ts'


/** The FastCGI apps' clients, for the status page and shutdown. */
export interface FastcgiApps {
  describe(): Record<string, ReturnType<FcgiClient['describe']>>
  close(): void
}

/**
 * Serves each `fastcgi.apps` prefix through a FastCGI client, with Resident's filters in front:
 * the request-side filters run as for a command (onRequest in fastify's hook, onUrlMap and
 * onAuthenticate here), the response-side ones see the app's answer. Bodies stream both ways.
 */
export async function registerFastcgiApps(app: FastifyInstance, config: ResidentConfig, log: PinoLogger): Promise<FastcgiApps> {
  const clients = new Map<string, FcgiClient>()
  const apps = Object.values(config.fastcgi.apps)
  if (apps.length > 0) {
    await app.register(async (scope) => {
      // The body is handed to the backend as it arrives, not parsed.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      for (const a of apps) {
        const client = new FcgiClient({
          addresses: a.addresses,
          maxConns: a.maxConns,
          connectTimeout: a.connectTimeout,
          downTime: a.downTime,
          onStderr: (line, backend) => log.warn({ app: a.prefix, backend }, `FastCGI stderr: ${line}`),
        })
        clients.set(a.prefix, client)
        // Returns nothing: an async handler that resolves undefined before a streamed body's
        // onSend hooks finish makes fastify send an empty reply of its own.
        const handler = (request: FastifyRequest, reply: FastifyReply): void => {
          serve(a, client, request, reply).catch((e: unknown) => { if (!reply.sent) reply.send(e) })
        }
        scope.all(`${a.prefix}*`, handler)
      }
    })
  }
  return {
    describe: () => Object.fromEntries([...clients].map(([p, c]) => [p, c.describe()])),
    close: () => { for (const c of clients.values()) c.close() },
  }
}

async function serve(a: FastcgiAppSettings, client: FcgiClient, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  let url = request.url
  if (request.filters) {
    const mapped = await beforeDispatch(request.filters, url)
    if (typeof mapped !== 'string') { sendOutcome(reply, fromWebResponse(mapped), false); return }
    url = mapped
  }
  const q = url.indexOf('?')
  const pathname = q < 0 ? url : url.slice(0, q)
  if (!pathname.startsWith(a.prefix)) throw new ResidentError('RES_ERR_NOT_FOUND', `no app serves ${pathname}`)
  let script
  try {
    script = splitScriptPath(pathname, a.prefix, a.scriptExtensions, a.index)
  } catch (e) {
    if (e instanceof ScriptPathError) throw new ResidentError(e.kind === 'bad' ? 'RES_ERR_BAD_REQUEST' : 'RES_ERR_NOT_FOUND', e.message)
    throw e
  }
  const raw = request.raw
  const declared = raw.headers['content-length']
  let body: Readable | Buffer | null = null
  let contentLength: number | undefined
  if (declared !== undefined) {
    contentLength = Number(declared)
    if (contentLength > a.bodyLimit) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the body is ${contentLength} bytes; this app takes at most ${a.bodyLimit}`)
    body = contentLength > 0 ? (request.body as Readable | undefined) ?? null : null
  } else if (request.body !== undefined && request.body !== null) {
    // A chunked body: CGI needs its length first, so it is read whole (up to the limit).
    const parts: Buffer[] = []
    let size = 0
    for await (const c of request.body as Readable) {
      size += (c as Buffer).length
      if (size > a.bodyLimit) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the body is larger than ${a.bodyLimit} bytes`)
      parts.push(c as Buffer)
    }
    body = Buffer.concat(parts, size)
    contentLength = size
  }
  const params = cgiEnv({
    method: request.method,
    requestUri: url,
    headers: raw.headers,
    script,
    root: a.root,
    remoteAddress: request.ip,
    remotePort: raw.socket?.remotePort,
    serverAddress: raw.socket?.localAddress,
    serverPort: raw.socket?.localPort,
    https: (raw.socket as { encrypted?: boolean } | undefined)?.encrypted === true,
    contentLength,
    serverSoftware: SERVER_SOFTWARE,
    extra: a.params,
  })
  const abort = new AbortController()
  const onClose = () => { if (!reply.raw.writableFinished) abort.abort(new Error('the client closed the connection')) }
  reply.raw.once('close', onClose)
  let timer: NodeJS.Timeout | undefined
  if (a.timeout > 0) timer = setTimeout(() => abort.abort(new ResidentError('RES_ERR_TIMEOUT', `the FastCGI app did not answer within ${a.timeout} ms`)), a.timeout)
  let res
  try {
    res = await client.request({ params, body, signal: abort.signal })
  } catch (e) {
    if (abort.signal.reason instanceof ResidentError) throw abort.signal.reason
    throw toResidentError(e)
  } finally {
    clearTimeout(timer)
  }
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of res.headers) {
    const prev = headers[k]
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  reply.code(res.status).headers(headers)
  res.body.on('error', (e) => request.log.error?.({ err: e }, 'FastCGI response failed part-way'))
  if (request.method === 'HEAD') { res.body.resume(); reply.send(); return }
  reply.send(res.body)
}

function toResidentError(e: unknown): unknown {
  if (!(e instanceof FcgiClientError)) return e
  switch (e.kind) {
    case 'unreachable': return new ResidentError('RES_ERR_FASTCGI_UNREACHABLE', e.message, { cause: e })
    case 'overloaded': return new ResidentError('RES_ERR_FASTCGI_OVERLOADED', e.message, { cause: e, headers: { 'retry-after': '1' } })
    case 'closed': return new ResidentError('RES_ERR_FASTCGI_CLOSED', e.message, { cause: e })
    case 'timeout': return new ResidentError('RES_ERR_TIMEOUT', e.message, { cause: e })
    default: return new ResidentError('RES_ERR_FASTCGI_PROTOCOL', e.message, { cause: e })
  }
}
