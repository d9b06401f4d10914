import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import type { Logger as PinoLogger } from 'pino'
import { EXTENSION_BASE } from '../../sdk/brand.ts'
import type { Extension } from '../../sdk/extension.ts'
import { cachedBuild } from '../../loader/bundle-cache.ts'
import { instantiate } from '../../loader/instantiate.ts'
import { setFaultTracing } from '../../loader/owner.ts'
import { commandTable, type CommandTable } from '../commands.ts'
import { cancelError, InvokedRequest } from '../command-request.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import type { ErrorRecord, Outcome } from '../outcome.ts'
import { producerClosed } from '../object-stream.ts'
import { commandOutcome, errorRecordOf } from '../results.ts'
import { decodeFrame } from './frame.ts'
import { formatCgiHead } from './result.ts'

/** Marks a runner's answer as an error record (a header between Resident and its own runner; never sent on). */
export const ERROR_RECORD_HEADER = 'x-resident-error-record'

/**
 * Marks a streamed answer (a Readable, an async iterable, a web Response with a body): the host
 * passes it on as it arrives instead of collecting a short body whole, so a slow stream's first
 * chunk is not held back until its end. Between Resident and its own runner; never sent on.
 */
export const STREAM_HEADER = 'x-resident-streamed'

/** The invocation as it crosses in the frame: its body left out when it is the raw bytes themselves. */
export type FramedInvocation = Omit<Invocation, 'rawBody' | 'body'> & { body?: unknown; bodyIsRaw: boolean }

/** The invocation → the frame's meta (the raw body travels as bytes after it). */
export function framedInvocation(inv: Invocation): FramedInvocation {
  const { rawBody: _raw, body, ...rest } = inv
  const bodyIsRaw = body instanceof Uint8Array
  return bodyIsRaw || body === undefined ? { ...rest, bodyIsRaw } : { ...rest, body, bodyIsRaw }
}

/**
 * The signals the cgi mode's host cancels a call with, one per reason: SIGHUP when the client
 * hung up, SIGALRM when the deadline's alarm went off, SIGTERM when the server is stopping. The
 * runner aborts the command's `request.signal` with the reason a command sees in every mode.
 */
export const CANCEL_SIGNALS: Record<CancelReason, NodeJS.Signals> = { 'client-gone': 'SIGHUP', timeout: 'SIGALRM', shutdown: 'SIGTERM' }

export interface InvocationIo {
  env: NodeJS.ProcessEnv
  /** All of stdin. */
  readStdin(): Promise<Buffer>
  write(data: string | Uint8Array): void | Promise<void>
  /** The runner's logger (pino-shaped: the request logger of the contract makes children of it). */
  log: PinoLogger
}

async function writeError(io: InvocationIo, record: ErrorRecord): Promise<void> {
  await io.write(formatCgiHead(record.status, [[ERROR_RECORD_HEADER, '1'], ['content-type', 'application/json']]))
  await io.write(JSON.stringify(record))
}

function headerLines(headers: Record<string, string | string[]>): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const one of v) out.push([k, one])
    else out.push([k, v])
  }
  return out
}

/**
 * One call of the cgi mode, inside the runner: the invocation from stdin (a frame), the extension
 * from its cached bundle, init(), the command, the outcome on stdout as a CGI response (an error
 * as its marked record), dispose('shutdown') as the process ends. The command's request is the
 * contract's own InvokedRequest, so it sees what it would in process.
 */
export async function runInvocation(entry: string, io: InvocationIo): Promise<number> {
  // One extension and one request per process: a fault is this one's whoever raised it, so the
  // async context that traces faults to a generation (and its hooks' start-up) is not needed.
  setFaultTracing('stack')
  const development = io.env.NODE_ENV === 'development'
  let frame
  try {
    frame = decodeFrame<FramedInvocation>(await io.readStdin())
  } catch (e) {
    await writeError(io, errorRecordOf(e, development))
    return 1
  }
  const meta = frame.meta
  const raw = Buffer.from(frame.raw.buffer, frame.raw.byteOffset, frame.raw.byteLength)
  const { bodyIsRaw, ...fields } = meta
  const invocation: Invocation = { ...fields, body: bodyIsRaw ? raw : meta.body, rawBody: raw }
  const request = new InvokedRequest(invocation, io.log)
  const handlers = Object.entries(CANCEL_SIGNALS).map(([reason, signal]) => {
    const on = () => request.abort(cancelError(reason as CancelReason))
    process.on(signal, on)
    return [signal, on] as const
  })
  // A command waiting on its signal holds nothing that keeps Node running: this does, until it settles.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let loaded: Awaited<ReturnType<typeof instantiate<Extension, CommandTable>>> | null = null
  let outcome: Outcome
  try {
    const config = io.env.RESIDENT_EXTENSION_CONFIG ? JSON.parse(io.env.RESIDENT_EXTENSION_CONFIG) as Record<string, unknown> : {}
    const generation = Number(io.env.RESIDENT_GENERATION) || 1
    const build = await cachedBuild(entry)
    loaded = await instantiate<Extension, CommandTable>(
      { name: invocation.extension, entry, generation, config, log: io.log }, EXTENSION_BASE, 'Extension', commandTable, build)
    const method = (loaded.instance as unknown as Record<string, unknown>)[invocation.command]
    if (typeof method !== 'function') throw new Error(`the extension has no command "${invocation.command}"`)
    outcome = await commandOutcome((method as (p: unknown, r: unknown) => unknown).call(loaded.instance, invocation.params, request), request, development)
  } catch (e) {
    outcome = { kind: 'error', error: errorRecordOf(e, development) }
  }
  try {
    if (outcome.kind === 'error') {
      await writeError(io, outcome.error)
      return 0
    }
    const lines = headerLines(outcome.headers)
    if (outcome.kind === 'stream') lines.push([STREAM_HEADER, '1'])
    await io.write(formatCgiHead(outcome.status, lines))
    if (outcome.kind === 'body') {
      if (outcome.body !== null && invocation.method !== 'HEAD') await io.write(outcome.body)
      return 0
    }
    // Cancelled (the client left, the deadline passed): the producer is closed, so an object
    // stream's `finally` runs before dispose(), as it would in process.
    const body = outcome.body as Readable
    const stop = () => body.destroy()
    if (request.signal.aborted) stop()
    else request.signal.addEventListener('abort', stop, { once: true })
    try {
      for await (const chunk of body) await io.write(typeof chunk === 'string' ? chunk : chunk as Uint8Array)
    } catch (e) {
      // The process ends after this: an object stream's generator first finishes its `finally`.
      if (request.signal.aborted) { await producerClosed(body); return 0 }
      // The head is out: the host sees the output end early; the reason is in the log.
      io.log.error({ err: e }, `${invocation.extension}/${invocation.command}: the streamed response failed after its head was written`)
      return 1
    }
    if (request.signal.aborted) await producerClosed(body)
    return 0
  } finally {
    clearInterval(keepAlive)
    for (const [signal, on] of handlers) process.off(signal, on)
    if (loaded) await loaded.dispose('shutdown')
  }
}
