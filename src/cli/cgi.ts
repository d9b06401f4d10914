import { Buffer } from 'node:buffer'
import path from 'node:path'
import { readSync, writeSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { ResidentError } from '../errors.ts'
import { EXTENSION_BASE } from '../sdk/brand.ts'
import type { Extension } from '../sdk/extension.ts'
import { isValidRequestId } from '../sdk/request-id.ts'
import type { CommandRequest, Logger } from '../sdk/types.ts'
import { cachedBuild } from '../loader/bundle-cache.ts'
import { instantiate } from '../loader/instantiate.ts'
import { setFaultTracing } from '../loader/owner.ts'
import { mapErrorStack } from '../loader/stack.ts'
import { commandTable, type CommandTable } from '../modes/commands.ts'
import { parseBody, parseForm } from '../dispatch/body.ts'
import { coerceParams, mergeInputs } from '../modes/params.ts'
import { findCommand, isValidTarget } from '../dispatch/route.ts'
import { commandOutcome, errorRecordOf } from '../modes/results.ts'
import type { ErrorRecord } from '../modes/outcome.ts'
import { errorBody } from '../modes/send.ts'
import { formatCgiHead } from '../modes/cgi/result.ts'

/**
 * `resident cgi <entry>`: the extension at <entry> as an RFC 3875 program. A web server's
 * mod_cgi (or Resident's own cgi mode) runs it once per request: PATH_INFO `/<command>` picks the
 * command, QUERY_STRING and the body on stdin are its parameters, and the response goes to stdout
 * as a CGI response. Errors answer as Resident's do (a Status and a JSON body with the request
 * id); the log goes to stderr, which web servers put in their error log.
 *
 * This file is the whole per-request path, so it imports nothing it does not use: no fastify,
 * no pino, and esbuild only when the bundle cache misses.
 */

let sequence = 0
/** A request id without node:crypto (a process per request must not pay to load it): pid, time, counter, randomness. */
function newRequestId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${(sequence++).toString(36)}-${Math.random().toString(36).slice(2, 10)}`
}

/** Largest body read from stdin when RESIDENT_BODY_LIMIT does not say: the server's default. */
const DEFAULT_BODY_LIMIT = 1024 * 1024

export interface CgiIo {
  env: NodeJS.ProcessEnv
  /** The body's stream; asked for only when there is a body (making process.stdin costs ms). */
  stdin: () => Readable
  /** Writes output; may return a promise (back-pressure). */
  write: (data: string | Uint8Array) => void | Promise<void>
  /** Writes one log line. */
  log: (line: string) => void
}

/**
 * One JSON line per entry on stderr, shaped enough like pino (levels, child, isLevelEnabled) for
 * the contract's request logger; pino itself would cost every CGI process its loading.
 */
function stderrLogger(stderr: { write(line: string): unknown }, bindings: Record<string, unknown>): Logger & { fatal: Logger['error']; isLevelEnabled(level: string): boolean; level: string } {
  const line = (level: number) => (obj: unknown, msg?: string) => {
    let fields = obj instanceof Error ? { err: obj } : typeof obj === 'object' && obj !== null ? obj as Record<string, unknown> : { msg: String(obj) }
    if (fields.err instanceof Error) fields = { ...fields, err: serialiseError(fields.err) }
    stderr.write(JSON.stringify({ level, time: Date.now(), ...bindings, ...fields, ...(msg === undefined ? {} : { msg }) }) + '\n')
  }
  return {
    trace: line(10), debug: line(20), info: line(30), warn: line(40), error: line(50), fatal: line(60),
    level: 'trace',
    isLevelEnabled: () => true,
    child: (b) => stderrLogger(stderr, { ...bindings, ...b }),
  }
}

function serialiseError(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.name, message: e.message, stack: e.stack }
  if (e.cause instanceof Error) out.cause = serialiseError(e.cause)
  return out
}

/** HTTP_X_FOO → x-foo, plus CONTENT_TYPE and CONTENT_LENGTH: the request's headers as a command sees them. */
function headersFrom(env: NodeJS.ProcessEnv): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && k.startsWith('HTTP_')) headers[k.slice(5).toLowerCase().replaceAll('_', '-')] = v
  }
  if (env.CONTENT_TYPE) headers['content-type'] = env.CONTENT_TYPE
  if (env.CONTENT_LENGTH) headers['content-length'] = env.CONTENT_LENGTH
  return headers
}

/** Reads exactly CONTENT_LENGTH bytes (RFC 3875 §4.2: never more), up to the body limit. */
async function readBody(stdin: Readable, length: number, limit: number): Promise<Buffer> {
  if (length === 0) return Buffer.alloc(0)
  if (length > limit) throw new ResidentError('RES_ERR_BODY_TOO_LARGE', `the body is ${length} bytes; the limit is ${limit}`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk)
    size += chunk.length
    if (size >= length) break
  }
  if (size < length) throw new ResidentError('RES_ERR_BAD_REQUEST', `the body ended after ${size} of ${length} bytes`)
  return Buffer.concat(chunks, size).subarray(0, length)
}

/**
 * Writes to a file descriptor synchronously: no stream object (process.stdout on a pipe loads
 * net and makes a socket). A non-blocking pipe that is full says EAGAIN: wait a moment and retry.
 */
export function fdWriter(fd: number): (data: string | Uint8Array) => void {
  let pause: Int32Array | null = null
  return (data) => {
    let buf = typeof data === 'string' ? Buffer.from(data) : data
    while (buf.length > 0) {
      try {
        const n = writeSync(fd, buf)
        buf = buf.subarray(n)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e
        Atomics.wait(pause ??= new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
      }
    }
  }
}

/** Runs one request; resolves with the exit code once the response is written. */
export async function runCgiRequest(entry: string, io: CgiIo): Promise<number> {
  // One extension and one request per process: no async context is needed to trace a fault to it.
  setFaultTracing('stack')
  const { env } = io
  const writeAll = async (data: string | Uint8Array) => { await io.write(data) }
  // A valid X-Request-Id from the web server's client is honoured, as Resident's server can.
  const headerId = env.HTTP_X_REQUEST_ID
  const id = isValidRequestId(headerId) ? headerId : newRequestId()
  const root = stderrLogger({ write: io.log }, { requestId: id })
  const method = env.REQUEST_METHOD ?? 'GET'
  const name = env.RESIDENT_EXTENSION_NAME || path.basename(entry).replace(/\.[^.]+$/, '').toLowerCase()
  const controller = new AbortController()
  const development = env.NODE_ENV === 'development'
  const answerError = async (n: ErrorRecord): Promise<number> => {
    const headers: Array<[string, string]> = Object.entries(n.headers)
    headers.push(['content-type', 'application/json; charset=utf-8'])
    await writeAll(formatCgiHead(n.status, headers))
    if (method !== 'HEAD') await writeAll(JSON.stringify(errorBody(n, id, development)))
    return 0
  }
  let loaded: Awaited<ReturnType<typeof instantiate<Extension, CommandTable>>> | null = null
  try {
    if (env.GATEWAY_INTERFACE === undefined || !env.GATEWAY_INTERFACE.startsWith('CGI/')) {
      throw new ResidentError('RES_ERR_BAD_REQUEST', 'GATEWAY_INTERFACE is not set: resident cgi is meant to be run by a web server as a CGI program')
    }
    // PATH_INFO "/greet" (or "/greet/") names the command; none at all is the default command.
    const pathInfo = env.PATH_INFO ?? ''
    const segment = pathInfo.replace(/^\//, '').replace(/\/$/, '')
    const target = { extension: name, command: segment === '' ? null : segment, path: pathInfo, query: env.QUERY_STRING ?? '' }
    if (segment.includes('/') || !isValidTarget(target)) throw new ResidentError('RES_ERR_UNKNOWN_COMMAND', `extension "${name}" has no command "${segment}"`)
    let config: Record<string, unknown> = {}
    if (env.RESIDENT_EXTENSION_CONFIG) config = JSON.parse(env.RESIDENT_EXTENSION_CONFIG) as Record<string, unknown>
    try {
      const build = await cachedBuild(entry)
      loaded = await instantiate<Extension, CommandTable>(
        { name, entry, generation: 1, config, log: root.child({ extension: name }) }, EXTENSION_BASE, 'Extension', commandTable, build)
    } catch (e) {
      // The reason goes to the log (stderr), as in the server; the client learns only that it failed.
      throw new ResidentError('RES_ERR_LOAD_FAILED', `extension "${name}" failed to load`, { cause: e })
    }
    const info = findCommand(loaded.inspected, target.command)
    if (!info) {
      throw new ResidentError('RES_ERR_UNKNOWN_COMMAND', target.command === null ? `extension "${name}" has no default command` : `extension "${name}" has no command "${target.command}"`)
    }
    if (!info.methods.includes(method)) {
      throw new ResidentError('RES_ERR_METHOD_NOT_ALLOWED', `${name}/${info.name} accepts ${info.methods.join(', ')}, not ${method}`, { headers: { allow: info.methods.join(', ') } })
    }
    const limit = Number(env.RESIDENT_BODY_LIMIT) || DEFAULT_BODY_LIMIT
    const length = env.CONTENT_LENGTH ? Number(env.CONTENT_LENGTH) : 0
    if (!Number.isSafeInteger(length) || length < 0) throw new ResidentError('RES_ERR_BAD_REQUEST', `CONTENT_LENGTH "${env.CONTENT_LENGTH}" is not a length`)
    const rawBody = length === 0 ? Buffer.alloc(0) : await readBody(io.stdin(), length, limit)
    const { body, contentType } = parseBody(rawBody, env.CONTENT_TYPE || undefined, info.accepts)
    const query = parseForm(target.query)
    const params = info.params ? coerceParams(info.params, body === undefined ? query : mergeInputs(query, body)) : mergeInputs(query, body)
    const request: CommandRequest = {
      id, method,
      url: (env.SCRIPT_NAME ?? '') + pathInfo + (target.query ? `?${target.query}` : ''),
      path: (env.SCRIPT_NAME ?? '') + pathInfo,
      query, headers: headersFrom(env), body, rawBody, contentType,
      clientAddress: env.REMOTE_ADDR ?? '',
      user: env.REMOTE_USER || undefined,
      extension: name, command: info.name,
      signal: controller.signal,
      log: root.child({ extension: name, command: info.name }),
    }
    const methods = loaded.instance as unknown as Record<string, (p: unknown, r: unknown) => unknown>
    // The same producer of responses as every mode (modes/results.ts): object streams included.
    const outcome = await commandOutcome(methods[info.name]!(params, request), request, development)
    if (outcome.kind === 'error') {
      const n = outcome.error
      if (n.status >= 500) root.error({ err: { type: 'Error', code: n.code, message: n.message, stack: n.stack } }, `${method} ${name} failed: ${n.code}: ${n.message}`)
      return await answerError(n)
    }
    const headers: Array<[string, string]> = []
    for (const [k, v] of Object.entries(outcome.headers)) for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one])
    await writeAll(formatCgiHead(outcome.status, headers))
    if (method === 'HEAD') return 0
    if (outcome.kind === 'body') {
      if (outcome.body !== null) await writeAll(outcome.body)
      return 0
    }
    try {
      for await (const chunk of outcome.body as AsyncIterable<Uint8Array | string>) await writeAll(chunk)
    } catch (e) {
      // The head is out: the web server sees the output end early, and the reason is logged.
      root.error({ err: mapErrorStack(e) }, `${name}/${info.name}: the streamed response failed after its head was written`)
      return 1
    }
    return 0
  } catch (e) {
    const n = errorRecordOf(e, development)
    if (n.status >= 500) root.error({ err: mapErrorStack(e) }, `${method} ${name} failed: ${n.code}: ${(e as Error)?.message ?? String(e)}`)
    return await answerError(n)
  } finally {
    controller.abort(new Error('the CGI request ended'))
    if (loaded) await loaded.dispose('shutdown')
  }
}

/**
 * `--describe <entry>`: loads the extension (building its cached bundle if need be), runs its
 * init() and dispose('shutdown') once, and prints its command table and build inputs as JSON, for
 * the cgi mode's host, which routes and validates without loading the code itself. Exit 1 with
 * the reason on stderr if it does not load or init() throws: a load fails as it would in process.
 */
async function describe(entry: string): Promise<number> {
  const out = fdWriter(1)
  const name = process.env.RESIDENT_EXTENSION_NAME || path.basename(entry).replace(/\.[^.]+$/, '').toLowerCase()
  try {
    const config = process.env.RESIDENT_EXTENSION_CONFIG ? JSON.parse(process.env.RESIDENT_EXTENSION_CONFIG) as Record<string, unknown> : {}
    const build = await cachedBuild(entry)
    const loaded = await instantiate<Extension, CommandTable>(
      { name, entry, generation: Number(process.env.RESIDENT_GENERATION) || 1, config, log: stderrLogger({ write: fdWriter(2) }, { extension: name }) }, EXTENSION_BASE, 'Extension', commandTable, build)
    out(JSON.stringify({ table: loaded.inspected, inputs: build.inputs }))
    await loaded.dispose('shutdown')
    return 0
  } catch (e) {
    const err = mapErrorStack(e) as Error
    fdWriter(2)(`${err?.stack ?? String(e)}\n`)
    return 1
  }
}

/**
 * Reads all of stdin (the cgi mode's invocation frame), with blocking reads of fd 0: the runner has
 * nothing else to do until it has the frame, and `process.stdin` would cost the process node:net
 * or fs streams and node:stream (a few ms, on every request). A non-blocking stdin (EAGAIN) is
 * read through process.stdin instead.
 */
async function readAll(): Promise<Buffer> {
  const chunks: Buffer[] = []
  const chunk = Buffer.allocUnsafe(64 * 1024)
  for (;;) {
    let n: number
    try {
      n = readSync(0, chunk, 0, chunk.length, null)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break
      if ((e as NodeJS.ErrnoException).code === 'EOF') return Buffer.concat(chunks)
      throw e
    }
    if (n === 0) return Buffer.concat(chunks)
    chunks.push(Buffer.from(chunk.subarray(0, n)))
  }
  for await (const more of process.stdin as AsyncIterable<Buffer>) chunks.push(more)
  return Buffer.concat(chunks)
}

/** The `resident cgi` command: one request, then exit (timers an extension left running do not keep it). */
export async function main(args: string[]): Promise<void> {
  // Resident's own cgi mode: the invocation comes whole on stdin, not as meta-variables.
  if (process.env.RESIDENT_FRAME === '1' && args.length === 1) {
    const { runInvocation } = await import('../modes/cgi/invocation-runner.ts')
    const err = fdWriter(2)
    const code = await runInvocation(path.resolve(args[0]!), {
      env: process.env, readStdin: readAll, write: fdWriter(1),
      log: stderrLogger({ write: err }, { extension: process.env.RESIDENT_EXTENSION_NAME }) as unknown as import('pino').Logger,
    })
    process.exit(code)
  }
  if (args[0] === '--describe' && args.length === 2) process.exit(await describe(path.resolve(args[1]!)))
  const entry = args[0]
  if (entry === undefined || entry === '--help' || entry === '-h' || args.length > 1) {
    process.stderr.write('usage: resident cgi <entry>\nRuns the extension at <entry> as a CGI program (PATH_INFO /<command> picks the command).\n')
    process.exit(2)
  }
  const err = fdWriter(2)
  const code = await runCgiRequest(path.resolve(entry), { env: process.env, stdin: () => process.stdin, write: fdWriter(1), log: err })
  // The writes were synchronous: nothing is left to flush.
  process.exit(code)
}
