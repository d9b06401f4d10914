import { Buffer } from 'node:buffer'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { LiveCalls } from '../live-calls.ts'
import { defaultCacheDir } from '../../loader/bundle-cache.ts'
import { requestLogger } from '../../log/request-logger.ts'
import type { Logger } from '../../sdk/types.ts'
import type { CommandTable } from '../commands.ts'
import { cancelError } from '../command-request.ts'
import type { Executor, LoadSpec, LoadedModule } from '../executor.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import { errorOutcome, type ErrorRecord, type Outcome, type OutcomeHeaders } from '../outcome.ts'
import { errorRecordOf } from '../results.ts'
import { baseEnvironment } from './meta.ts'
import { encodeFrame } from './frame.ts'
import { CANCEL_SIGNALS, ERROR_RECORD_HEADER, framedInvocation, STREAM_HEADER } from './invocation-runner.ts'
import type { SpawnWay } from './launch.ts'
import { runCgi, type CgiStarted } from './process.ts'
import { ensureRunnerBundle, ensureRunnerLoader } from './runner-bundle.ts'

export interface CgiModeOptions {
  /** Where extension bundles and the runner are cached (default: the user's bundle cache). */
  cacheDir?: string
  /** Largest response head and body a runner may write. */
  maxHeaderBytes?: number
  maxOutputBytes?: number
  /** The request body limit the runner enforces (the server's bodyLimit). */
  bodyLimit?: number
  /** Host environment variables a runner may see (an allow-list). */
  passEnv?: readonly string[]
  /** What starts each request's runner (see cgi.spawn): the spawn helper by default. */
  spawn?: SpawnWay
}

/** Bodies up to this size are read whole and handed on as bytes; longer ones stream. */
const WHOLE_BODY = 64 * 1024

/**
 * The cgi mode: each request runs in a process of its own, which loads the extension, runs one
 * command and exits: `node <runner loader> <entry>` (runner-bundle.ts). The invocation goes in whole on stdin (a frame: one
 * JSON line, then the raw body), so the command sees the request it would in process; the outcome
 * comes back as a CGI response (the codec the gateway and `resident cgi` use), a failure as its
 * error record. Nothing survives between requests: no instance state, no timers, no caches;
 * init() and dispose() run for every request. cancel() signals the runner's process group
 * (SIGHUP, SIGALRM or SIGTERM by reason) and kills it a second later if it is still there.
 *
 * load() asks a runner to describe the extension (`--describe`): that builds the bundle into the
 * disk cache, so requests never run esbuild, and gives the host the command table to route by
 * without ever evaluating the extension's code in its own process.
 */
export class CgiExecutor implements Executor {
  readonly mode = 'cgi' as const
  readonly #options: CgiModeOptions
  #cacheDir: string | null = null
  /** Every runner still running, of every extension: close() ends them. */
  readonly #running = new Map<AbortController, Promise<void>>()

  constructor(options: CgiModeOptions = {}) {
    this.#options = options
  }

  #runner: Promise<string> | null = null

  #cache(): string {
    if (this.#cacheDir !== null) return this.#cacheDir
    if (this.#options.cacheDir !== undefined) mkdirSync(this.#options.cacheDir, { recursive: true, mode: 0o700 })
    // A cache that is not safely ours (another user's, world-writable) is replaced by a private one.
    return this.#cacheDir = this.#options.cacheDir ?? defaultCacheDir() ?? mkdtempSync(path.join(tmpdir(), 'resident-cgi-'))
  }

  async load(spec: LoadSpec): Promise<LoadedModule> {
    const cacheDir = this.#cache()
    // One check (or build) of the runner per executor; a failed one is tried again by the next load.
    const runner = await (this.#runner ??= ensureRunnerBundle(cacheDir).catch((e: unknown) => { this.#runner = null; throw e }))
    const base = baseEnvironment(process.env, this.#options.passEnv)
    base.RESIDENT_CACHE_DIR = cacheDir
    base.RESIDENT_EXTENSION_NAME = spec.name
    base.RESIDENT_EXTENSION_CONFIG = JSON.stringify(spec.config)
    if (this.#options.bodyLimit !== undefined) base.RESIDENT_BODY_LIMIT = String(this.#options.bodyLimit)
    base.RESIDENT_GENERATION = String(spec.generation)
    if (spec.development) base.NODE_ENV = 'development'
    const { table, inputs } = await describe(runner, spec.entry, base)
    // Requests start the runner through its code-cache loader (the description above does not, so
    // the cache a request writes holds the code requests run).
    const loader = ensureRunnerLoader(runner)
    // Requests hand their runner the invocation as a frame on stdin.
    base.RESIDENT_FRAME = '1'
    const options = this.#options
    const running = this.#running
    // The calls that cancel() can reach: the dispatcher's deadline and the client leaving abort
    // their signal, which kills the process group. A streamed body stays reachable until it closes.
    const live = new LiveCalls()
    return {
      mode: 'cgi',
      table,
      inputs,
      // No code of the extension lives in this process.
      sentinel: null,
      async invoke(inv: Invocation): Promise<Outcome> {
        const { controller, forget } = live.start(inv.id)
        let outcome: Outcome
        try {
          const track = (exited: Promise<void>) => {
            running.set(controller, exited)
            void exited.then(() => running.delete(controller))
          }
          outcome = await invoke(loader, spec, base, options, inv, controller.signal, requestLogger(spec.log, inv.id), track)
        } catch (e) {
          forget()
          return errorOutcome(errorRecordOf(controller.signal.aborted ? controller.signal.reason : e, spec.development))
        }
        if (outcome.kind === 'stream') outcome.body.once('close', forget)
        else forget()
        return outcome
      },
      cancel(id: string, reason: CancelReason) {
        for (const c of live.of(id)) c.abort(cancelError(reason))
      },
      canUnload: async () => true,
      async dispose() {},
    }
  }

  /**
   * Shutdown: runners still at work (the server's drain is over) get SIGTERM, so their commands see
   * the abort with RES_ERR_UNAVAILABLE, and their groups are killed after the grace. Resolves once
   * they have exited (at most the grace and a little more: the kill follows then).
   */
  async close(): Promise<void> {
    const running = [...this.#running]
    if (running.length === 0) return
    for (const [controller] of running) controller.abort(cancelError('shutdown'))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(running.map(([, exited]) => exited)),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, CANCEL_GRACE_MS + 1000) }),
    ])
    clearTimeout(timer)
  }
}

/** Runs `node <runner> --describe <entry>`: the command table and the build's inputs, or the reason it does not load. */
function describe(runner: string, entry: string, env: Record<string, string>): Promise<{ table: CommandTable; inputs: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner, '--describe', entry], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => { err += d })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) { reject(new Error(err.trim() || `the cgi runner exited with ${code}`)); return }
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as { table: CommandTable; inputs: string[] })
      } catch (e) {
        reject(new Error(`the cgi runner's description is not JSON: ${(e as Error).message}`))
      }
    })
  })
}

/** The signal for a cancellation, from the reason the call's controller was aborted with (see cancelError). */
function signalFor(reason: unknown): NodeJS.Signals {
  const code = (reason as { code?: unknown } | null)?.code
  return code === 'RES_ERR_TIMEOUT' ? CANCEL_SIGNALS.timeout : code === 'RES_ERR_UNAVAILABLE' ? CANCEL_SIGNALS.shutdown : CANCEL_SIGNALS['client-gone']
}

/** How long a cancelled runner has, after its signal, before its process group is killed. */
const CANCEL_GRACE_MS = 1000

async function invoke(runner: string, spec: LoadSpec, base: Record<string, string>, options: CgiModeOptions, request: Invocation, signal: AbortSignal, log: Logger, onSpawn: (exited: Promise<void>) => void): Promise<Outcome> {
  let started: CgiStarted
  try {
    started = await runCgi({
      name: `${spec.name} (cgi mode)`,
      program: process.execPath,
      // The runner's own file needs no symlinks resolved (Node would walk its path with lstat).
      args: ['--preserve-symlinks-main', runner, spec.entry],
      env: base,
      cwd: path.dirname(spec.entry),
      // The invocation whole, as plain data: the command sees exactly the request it would in process.
      body: encodeFrame(framedInvocation(request), request.rawBody),
      limits: { maxHeaderBytes: options.maxHeaderBytes ?? 64 * 1024, maxOutputBytes: options.maxOutputBytes ?? Number.MAX_SAFE_INTEGER, timeout: 0 },
      // The dispatcher's deadline and the client leaving abort the signal: the runner gets the
      // reason's signal and a grace to let the command see its abort, then its group is killed.
      signal,
      gentle: { signalFor, graceMs: CANCEL_GRACE_MS },
      onSpawn,
      spawn: options.spawn,
      log,
    })
  } catch (e) {
    if (signal.aborted) throw signal.reason
    throw e
  }
  if (started.head.headers.some(([k]) => k === ERROR_RECORD_HEADER)) {
    const text = await bodyOf(started.body)
    try {
      return errorOutcome(JSON.parse(Buffer.isBuffer(text) ? text.toString('utf8') : '') as ErrorRecord)
    } catch {
      return errorOutcome({ status: 502, code: 'RES_ERR_CGI_BAD_OUTPUT', message: `${spec.name} (cgi mode): the error record is not JSON`, headers: {} })
    }
  }
  const headers: OutcomeHeaders = {}
  let streamed = false
  for (const [name, v] of started.head.headers) {
    const k = name.toLowerCase()
    if (k === STREAM_HEADER) { streamed = true; continue }
    const prev = headers[k]
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  const status = started.head.status
  if (status === 204 || status === 304 || request.method === 'HEAD') {
    started.body.resume()
    return { kind: 'body', status, headers, body: null }
  }
  if (streamed) return { kind: 'stream', status, headers, body: started.body }
  const out = await bodyOf(started.body)
  return Buffer.isBuffer(out) ? { kind: 'body', status, headers, body: out } : { kind: 'stream', status, headers, body: out }
}

/** The whole body when it is short (the usual case), else the stream itself, pulled by the response. */
function bodyOf(stream: Readable): Promise<Buffer | Readable> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size <= WHOLE_BODY) return
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.pause()
      stream.unshift(Buffer.concat(chunks, size))
      resolve(stream)
    }
    const onEnd = () => resolve(Buffer.concat(chunks, size))
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('error', reject)
  })
}
