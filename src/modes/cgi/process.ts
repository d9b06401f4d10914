import { Buffer } from 'node:buffer'
import { PassThrough, type Readable } from 'node:stream'
import { ResidentError } from '../../errors.ts'
import type { Logger } from '../../sdk/types.ts'
import { launchDirect, SpawnHelperLost, type ProgramExit, type SpawnWay } from './launch.ts'
import { CgiHeadReader, CgiOutputError, type CgiHead } from './response.ts'
import { launchViaHelper } from './spawner.ts'

export interface CgiLimits {
  /** Largest response head in bytes (502 beyond). */
  maxHeaderBytes: number
  /** Largest response body in bytes: beyond it the program is killed and the response cut off. */
  maxOutputBytes: number
  /** How long the program may run, in ms, head and body together; 0 = no deadline. */
  timeout: number
}

export interface CgiRunSpec {
  /** What the logs and error messages call the program (its URL path, or the extension). */
  name: string
  program: string
  args: string[]
  env: Record<string, string>
  cwd: string
  /** The request body: bytes, a stream of exactly CONTENT_LENGTH bytes, or null for none. */
  body: Buffer | Readable | null
  limits: CgiLimits
  /** Fires when the client goes away: the process group is killed. */
  signal?: AbortSignal
  /**
   * Cancel gently instead: on abort, send the group the signal `signalFor(reason)` names and kill
   * it only if it is still there `graceMs` later (the cgi mode: the command sees its abort).
   */
  gentle?: { signalFor(reason: unknown): NodeJS.Signals; graceMs: number }
  /** What starts it: the spawn helper (default), or a fork of the server itself. */
  spawn?: SpawnWay
  /** Called once the process has started, with a promise that settles when it has exited. */
  onSpawn?(exited: Promise<void>): void
  log: Logger
}

export interface CgiStarted {
  head: CgiHead
  /** The rest of the output. It errors if the program is killed (deadline, output cap) after its head. */
  body: Readable
  /**
   * Whether the body has any bytes: known before the head is handed over only when the head has
   * no Content-Type (the caller then labels a non-empty body itself); null otherwise.
   */
  hasBody: boolean | null
  /** Kills the process group (for a caller that no longer wants the output, such as a local redirect). */
  kill(): void
}

/**
 * The process groups of programs still running. Each runs detached (a session of its own), so
 * nothing would end it with Resident: however Resident exits (a second SIGTERM, a fatal fault),
 * they are killed on the way out, children included.
 */
const liveGroups = new Set<number>()
let exitHook = false
function trackGroup(pid: number): void {
  liveGroups.add(pid)
  if (exitHook) return
  exitHook = true
  process.once('exit', () => {
    for (const group of liveGroups) try { process.kill(-group, 'SIGKILL') } catch { /* already gone */ }
  })
}

/**
 * Runs one CGI program in a process group of its own and resolves once its response head is read.
 * Rejects with a ResidentError before the head: 502 RES_ERR_CGI_BAD_OUTPUT (invalid or oversized
 * head, naming the program), 502 RES_ERR_CGI_FAILED (it could not start), 504 RES_ERR_CGI_TIMEOUT.
 * Whatever it writes on stderr is logged once it exits. A deadline, the output cap and the client
 * leaving kill the whole group (SIGKILL to -pid), so children it forked die with it.
 */
export function runCgi(spec: CgiRunSpec): Promise<CgiStarted> {
  return new Promise((resolve, reject) => {
    const launch = spec.spawn === 'direct' ? launchDirect : launchViaHelper
    const child = launch({ program: spec.program, args: spec.args, env: spec.env, cwd: spec.cwd, stdin: spec.body !== null })
    let settled = false
    let exited = false
    let pid: number | undefined
    child.once('spawn', (p: number) => {
      pid = p
      trackGroup(p)
      spec.onSpawn?.(new Promise((resolve) => child.once('close', () => resolve())))
    })
    const reader = new CgiHeadReader(spec.limits.maxHeaderBytes)
    const out = new PassThrough()
    let outBytes = 0

    // Once cancelled or failed, the group is killed; members still there when the program itself
    // exits (a child it left behind) are killed then (the launcher keeps that promise).
    const killGroup = () => {
      if (!exited) child.kill('SIGKILL')
    }
    let delivered = false
    const fail = (e: ResidentError) => {
      killGroup()
      if (!settled) { settled = true; reject(e); return }
      // After a rejection nobody reads `out`; after the head, the reader hears of the failure.
      if (delivered && !out.destroyed) out.destroy(e)
    }
    const timer = spec.limits.timeout > 0
      ? setTimeout(() => fail(new ResidentError('RES_ERR_CGI_TIMEOUT', `${spec.name} did not finish within ${spec.limits.timeout} ms; its process group was killed`)), spec.limits.timeout)
      : null
    let graceTimer: NodeJS.Timeout | null = null
    const onAbort = () => {
      const gentle = spec.gentle
      if (gentle === undefined || exited) {
        fail(new ResidentError('RES_ERR_CGI_FAILED', `${spec.name}: the client went away; its process group was killed`))
        return
      }
      // Not started yet: the launcher makes sure it never does.
      child.kill(gentle.signalFor(spec.signal!.reason))
      graceTimer = setTimeout(killGroup, gentle.graceMs)
    }
    if (spec.signal) {
      if (spec.signal.aborted) { fail(new ResidentError('RES_ERR_CGI_FAILED', `${spec.name}: cancelled before it started`)); return }
      spec.signal.addEventListener('abort', onAbort, { once: true })
    }
    const cleanup = () => {
      if (timer) clearTimeout(timer)
      if (graceTimer) clearTimeout(graceTimer)
      spec.signal?.removeEventListener('abort', onAbort)
    }

    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup()
      const message = e instanceof SpawnHelperLost ? `${spec.name}: ${e.message}` : `${spec.name}: cannot start ${spec.program}: ${e.code ?? e.message}`
      fail(new ResidentError('RES_ERR_CGI_FAILED', message, { cause: e }))
    })

    const deliver = (head: CgiHead, first: Buffer) => {
      delivered = true
      const finish = (hasBody: boolean | null) => {
        if (settled) return
        settled = true
        resolve({ head, body: out, hasBody, kill: killGroup })
      }
      if (first.length > 0) pushOut(first)
      if (head.contentType !== null) { finish(null); return }
      if (first.length > 0) { finish(true); return }
      // No Content-Type: whether the document has a body decides how it is labelled.
      const onData = () => { stdout.off('end', onEnd); finish(true) }
      const onEnd = () => { stdout.off('data', onData); finish(false) }
      stdout.once('data', onData)
      stdout.once('end', onEnd)
    }
    const pushOut = (chunk: Buffer) => {
      outBytes += chunk.length
      if (outBytes > spec.limits.maxOutputBytes) {
        fail(new ResidentError('RES_ERR_CGI_OUTPUT_TOO_LARGE', `${spec.name} wrote more than ${spec.limits.maxOutputBytes} bytes; its process group was killed`))
        return
      }
      if (!out.write(chunk)) {
        stdout.pause()
        out.once('drain', () => stdout.resume())
      }
    }
    let headDone = false
    const stdout = child.stdout
    stdout.on('data', (chunk: Buffer) => {
      if (headDone) { pushOut(chunk); return }
      let got: ReturnType<CgiHeadReader['push']>
      try {
        got = reader.push(chunk)
      } catch (e) {
        headDone = true
        fail(badOutput(spec.name, e))
        return
      }
      if (got === null) return
      headDone = true
      deliver(got.head, got.body)
    })
    stdout.on('end', () => {
      if (!headDone) {
        headDone = true
        try { reader.end() } catch (e) { fail(badOutput(spec.name, e)) }
        return
      }
      if (!out.destroyed) out.end()
    })
    child.on('close', (exit: ProgramExit) => {
      exited = true
      cleanup()
      if (pid !== undefined) liveGroups.delete(pid)
      if (exit.stderr !== '' || exit.stderrDropped > 0) {
        spec.log.warn({ program: spec.name, exitCode: exit.code, signal: exit.signal, stderr: exit.stderr, stderrDropped: exit.stderrDropped || undefined }, `${spec.name} wrote to stderr`)
      }
    })

    // The body: stdin ends after it; a program that does not read it is no error (EPIPE is ignored).
    const stdin = child.stdin
    if (stdin === null) return
    stdin.on('error', () => {})
    if (Buffer.isBuffer(spec.body)) stdin.end(spec.body)
    else {
      const body = spec.body!
      body.on('error', () => fail(new ResidentError('RES_ERR_CGI_FAILED', `${spec.name}: the request body failed`)))
      body.pipe(stdin)
    }
  })
}

function badOutput(name: string, e: unknown): ResidentError {
  if (e instanceof CgiOutputError) {
    return new ResidentError(e.tooLarge ? 'RES_ERR_CGI_OUTPUT_TOO_LARGE' : 'RES_ERR_CGI_BAD_OUTPUT', `${name}: ${e.message}`, { cause: e })
  }
  return new ResidentError('RES_ERR_CGI_BAD_OUTPUT', `${name}: ${(e as Error).message}`, { cause: e })
}
