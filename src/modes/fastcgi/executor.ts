import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { text } from 'node:stream/consumers'
import { externalFastcgiOf, poolSettingsOf } from '../../config/pool.ts'
import type { UnloadReason } from '../../sdk/types.ts'
import type { CommandTable } from '../commands.ts'
import type { Executor, LoadSpec, LoadedModule } from '../executor.ts'
import type { ExecutorContext } from '../executors.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import type { ErrorRecord, Outcome, OutcomeHeaders } from '../outcome.ts'
import type { ModeProcess } from '../processes.ts'
import { LiveCalls } from '../live-calls.ts'
import { FcgiClient, FcgiClientError, type FcgiResponse } from './client.ts'
import { PoolError, ProcessPool } from './pool.ts'
import { CAN_UNLOAD_PARAM, DESCRIBE_PARAM, GENERATION_ENV, INVOCATION_ID_HEADER, REASON_PARAM, UNLOAD_PARAM, USER_FILTER_SOURCE, USER_HEADER } from './managed.ts'


/** After a deadline, how long the worker gets to end the call itself before its connection is closed. */
const TIMEOUT_GRACE = 2000

type Run = (req: { params: Array<[string, string]>; body: Buffer | null; signal?: AbortSignal; method: string; uri: string; contentLength: number }) => Promise<FcgiResponse>

const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}): Outcome =>
  ({ kind: 'error', error: { status, code, message, headers } satisfies ErrorRecord })

/** An invocation as the CGI variables of a FastCGI request to a worker, which dispatches it as HTTP. */
function paramsOf(inv: Invocation): Array<[string, string]> {
  const q = inv.url.indexOf('?')
  const p: Array<[string, string]> = [
    ['GATEWAY_INTERFACE', 'CGI/1.1'], ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_METHOD', inv.method], ['REQUEST_URI', inv.url],
    ['QUERY_STRING', q < 0 ? '' : inv.url.slice(q + 1)], ['REMOTE_ADDR', inv.clientAddress],
  ]
  if (inv.rawBody.length > 0) {
    p.push(['CONTENT_LENGTH', String(inv.rawBody.length)])
    if (inv.contentType) p.push(['CONTENT_TYPE', inv.contentType])
  }
  for (const [name, value] of Object.entries(inv.headers)) {
    if (value === undefined || name === 'content-length' || name === 'content-type' || name === 'transfer-encoding' || name === INVOCATION_ID_HEADER || name === USER_HEADER || !/^[a-z0-9-]+$/.test(name)) continue
    p.push([`HTTP_${name.toUpperCase().replaceAll('-', '_')}`, Array.isArray(value) ? value.join(', ') : String(value)])
  }
  p.push([`HTTP_${INVOCATION_ID_HEADER.toUpperCase().replaceAll('-', '_')}`, inv.id])
  if (inv.user !== undefined) p.push([`HTTP_${USER_HEADER.toUpperCase().replaceAll('-', '_')}`, JSON.stringify(inv.user)])
  return p
}

function headersOf(res: FcgiResponse): OutcomeHeaders {
  const h: OutcomeHeaders = {}
  for (const [k, v] of res.headers) {
    const prev = h[k]
    h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return h
}

function failureOf(e: unknown, name: string): Outcome {
  if (e instanceof PoolError) {
    if (e.kind === 'timeout') return fail(504, 'RES_ERR_TIMEOUT', `${name}: ${e.message}`)
    if (e.kind === 'crashed') return fail(502, 'RES_ERR_FASTCGI_CLOSED', `${name}: the worker serving the request exited`)
    return fail(503, 'RES_ERR_UNAVAILABLE', `${name}: ${e.message}`)
  }
  if (e instanceof FcgiClientError) {
    if (e.kind === 'overloaded') return fail(503, 'RES_ERR_FASTCGI_OVERLOADED', `${name}: the FastCGI pool is overloaded`, { 'retry-after': '1' })
    if (e.kind === 'unreachable') return fail(502, 'RES_ERR_FASTCGI_UNREACHABLE', `${name}: no FastCGI worker accepted a connection`)
    if (e.kind === 'closed') return fail(502, 'RES_ERR_FASTCGI_CLOSED', `${name}: the FastCGI worker closed the connection before the response was complete`)
    return fail(502, 'RES_ERR_FASTCGI_PROTOCOL', `${name}: ${e.message}`)
  }
  return fail(500, 'RES_ERR_INTERNAL', `${name}: ${(e as Error)?.message ?? String(e)}`)
}

/**
 * The `fastcgi` mode: each generation of an extension runs in a pool of `resident fcgi-worker`
 * processes that Resident manages (`extensions.<name>.pool`), or in a pool someone else runs
 * (`extensions.<name>.fastcgi.address`). An invocation travels as a FastCGI request (its CGI
 * variables, its raw body on STDIN); the worker dispatches it exactly as HTTP would, and its
 * response comes back as a streamed outcome. Cancelling closes the connection, which is how
 * FastCGI aborts, and the command's `request.signal` fires in the worker.
 */
export class FastcgiExecutor implements Executor {
  readonly mode = 'fastcgi' as const
  readonly #ctx: ExecutorContext

  constructor(ctx: ExecutorContext) { this.#ctx = ctx }

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const config = this.#ctx.config
    const external = externalFastcgiOf(config, spec.name)
    const dir = mkdtempSync(path.join(tmpdir(), `resident-fastcgi-${spec.name}-`))
    let run: Run
    let shut: () => Promise<void>
    let pool: ProcessPool | null = null
    if (external !== null) {
      const client = new FcgiClient({ addresses: external.addresses, maxConns: external.maxConns, onStderr: (line, backend) => spec.log.warn({ backend }, `FastCGI stderr: ${line}`) })
      run = (r) => client.request(r)
      shut = async () => client.close()
    } else {
      // The workers run the extension in process, with no filters (they run in the host), take the
      // host's request id, and leave deadlines to the host, which cancels.
      mkdirSync(path.join(dir, 'filters'))
      writeFileSync(path.join(dir, 'filters', 'resident-user.ts'), USER_FILTER_SOURCE)
      const workerConfig = path.join(dir, 'worker.config.json')
      writeFileSync(workerConfig, JSON.stringify({
        extensionsDir: config.extensionsDir, filtersDir: path.join(dir, 'filters'), requestIdHeader: INVOCATION_ID_HEADER,
        // The worker keeps the host's deadline, so a command it abandons sees RES_ERR_TIMEOUT.
        bodyLimit: config.bodyLimit, requestTimeout: config.requestTimeout, idleTimeout: 0, logLevel: config.logLevel, development: spec.development,
        extensions: { [spec.name]: { config: spec.config } },
      }))
      const p = new ProcessPool({
        name: spec.name, settings: poolSettingsOf(config, spec.name), workerArgs: ['--config', workerConfig], cwd: dir, log: spec.log,
        env: { [GENERATION_ENV]: String(spec.generation) },
      })
      pool = p
      await p.start()
      run = (r) => p.request(r)
      shut = () => p.close()
    }
    const closeAll = async () => { await shut(); rmSync(dir, { recursive: true, force: true }) }

    let table: CommandTable
    let inputs: string[]
    try {
      const res = await run({ params: [['REQUEST_METHOD', 'GET'], ['REQUEST_URI', `/${spec.name}/`], [DESCRIBE_PARAM, spec.name], ['REMOTE_ADDR', '127.0.0.1']], body: null, method: 'GET', uri: `describe ${spec.name}`, contentLength: 0 })
      const answer = JSON.parse(await text(res.body)) as { table?: CommandTable; inputs?: string[]; error?: { message?: string } }
      if (res.status !== 200 || !answer.table) throw new Error(answer.error?.message ?? `the worker could not load ${spec.name} (status ${res.status})`)
      table = answer.table
      inputs = answer.inputs ?? []
    } catch (e) {
      await closeAll()
      throw e
    }

    const calls = new LiveCalls()
    const name = spec.name
    return {
      mode: 'fastcgi',
      table,
      inputs,
      sentinel: null,
      async invoke(inv: Invocation): Promise<Outcome> {
        const { controller: abort, forget } = calls.start(inv.id)
        try {
          const body = inv.rawBody.length > 0 ? Buffer.from(inv.rawBody.buffer, inv.rawBody.byteOffset, inv.rawBody.byteLength) : null
          const res = await run({ params: paramsOf(inv), body, signal: abort.signal, method: inv.method, uri: inv.url, contentLength: inv.rawBody.length })
          res.body.once('close', forget)
          return { kind: 'stream', status: res.status, headers: headersOf(res), body: res.body }
        } catch (e) {
          forget()
          return failureOf(e, name)
        }
      },
      cancel(id: string, reason: CancelReason): void {
        const running = calls.of(id)
        if (running.length === 0) return
        const abort = () => { for (const a of running) a.abort(new Error(`cancelled: ${reason}`)) }
        // Past the deadline the worker's own timer fires too (it has the same requestTimeout), and
        // its command sees RES_ERR_TIMEOUT; the connection closes only if the worker does not end
        // the call soon after. A client that left closes it at once.
        if (reason === 'timeout') setTimeout(abort, TIMEOUT_GRACE).unref()
        else abort()
      },
      // Each worker has its own instance: the pool may go when every one of them agrees.
      async canUnload(reason: UnloadReason): Promise<boolean> {
        if (pool === null) return true
        const answers = await pool.each([[CAN_UNLOAD_PARAM, name], [REASON_PARAM, reason]]) as Array<{ willing?: boolean }>
        return answers.every((a) => a.willing !== false)
      },
      // The workers dispose with the host's reason first; stopping them then finds nothing loaded.
      async dispose(reason: UnloadReason): Promise<void> {
        if (pool !== null) {
          const answers = await pool.each([[UNLOAD_PARAM, name], [REASON_PARAM, reason]]) as Array<{ error?: { message?: string } }>
          for (const a of answers) if (a.error) spec.log.warn(`a worker of ${name} could not unload it: ${a.error.message}`)
        }
        await closeAll()
      },
      memory: pool === null ? undefined : () => {
        const rss = pool!.rss()
        return { heapUsed: rss, heapTotal: rss, external: 0 }
      },
      status: () => (pool !== null ? pool.status() : { external: external!.addresses }),
      processes: (): ModeProcess[] => {
        if (pool === null) {
          return external!.addresses.map((a) => ({ pid: null, id: String(a), kind: 'fastcgi (external)', extension: name, state: 'not managed by Resident' }))
        }
        const s = pool.status() as { processes: Array<{ pid: number; state: string; 'start time': string; requests: number }> }
        return s.processes.map((w) => ({ pid: w.pid, id: `pid ${w.pid}`, kind: 'fastcgi', extension: name, state: w.state.toLowerCase(), requests: w.requests, startedAt: w['start time'] }))
      },
    }
  }

  async close(): Promise<void> {}
}
