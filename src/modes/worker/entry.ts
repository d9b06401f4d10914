// The worker side of the worker mode: one worker thread runs one generation of one extension.
// The host builds the extension (it keeps the one esbuild service) and sends the bundle; this
// evaluates it in the worker's own isolate, answers invocations with outcomes, streams bodies
// under the host's credits, and keeps its heap figures in a SharedArrayBuffer the host reads.
import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import v8 from 'node:v8'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import type { Logger as PinoLogger } from 'pino'
import { instantiate } from '../../loader/instantiate.ts'
import { mapErrorStack } from '../../loader/stack.ts'
import { EXTENSION_BASE } from '../../sdk/brand.ts'
import type { Extension } from '../../sdk/extension.ts'
import type { UnloadReason } from '../../sdk/types.ts'
import { commandTable, type CommandTable } from '../commands.ts'
import { cancelError, InvokedRequest } from '../command-request.ts'
import type { Invocation } from '../invocation.ts'
import type { Outcome } from '../outcome.ts'
import { commandOutcome, errorRecordOf } from '../results.ts'
import { ForwardLogger } from './forward-logger.ts'
import { Outbox } from './outbox.ts'
import { STAT_EXTERNAL, STAT_HEAP_TOTAL, STAT_HEAP_USED, type FromWorker, type ToWorker, type WireOutcome, type WorkerInit } from './protocol.ts'
import { asBuffer, transferable } from './transfer.ts'

const port = parentPort as MessagePort
const init = workerData as WorkerInit
// Sent in batches, once per turn of the loop (outbox.ts). A message that cannot be cloned is a
// bug of the protocol's own messages (outcomes are plain data by construction): logged.
const outbox = new Outbox<FromWorker>((batch, transfer) => port.postMessage(batch, transfer),
  (q, e) => log.error({ err: e }, `a ${q.m.t} message could not be sent to the host`))
const post = (m: FromWorker, transfer?: ArrayBuffer[]) => outbox.push(m, transfer)

// Heap figures for the host, read there for free; refreshed often enough for eviction and status.
const stats = new Float64Array(init.stats)
function publishStats(): void {
  const h = v8.getHeapStatistics()
  stats[STAT_HEAP_USED] = h.used_heap_size
  stats[STAT_HEAP_TOTAL] = h.total_heap_size
  stats[STAT_EXTERNAL] = h.external_memory
}
publishStats()
setInterval(publishStats, 250).unref()

/** A call in progress: its request (for cancel) and, for a streamed body, its pump's state. */
interface Live {
  request: InvokedRequest
  body?: Readable
  credits?: number
  wake?: (() => void) | null
  /** Cancelled before its body existed (an object stream awaiting its first chunk). */
  cancelled?: boolean
}
const live = new Map<number, Live>()

const log = new ForwardLogger(port, init.level, {})
let instance: Extension
let methods: Record<string, (params: unknown, request: unknown) => unknown>
let disposeGeneration: (reason: UnloadReason) => Promise<void>

/** Bytes leave by transfer; an empty or pooled view is copied first (see transfer.ts). */
function sendBytes(bytes: Uint8Array): [Uint8Array, ArrayBuffer[]] {
  if (bytes.byteLength === 0) return [new Uint8Array(0), []]
  const owned = transferable(bytes)
  return [owned, [owned.buffer as ArrayBuffer]]
}

function sendOutcome(seq: number, outcome: Outcome): void {
  if (outcome.kind === 'stream') { void pump(seq, outcome); return }
  live.delete(seq)
  if (outcome.kind === 'body' && outcome.body instanceof Uint8Array) {
    const [bytes, transfer] = sendBytes(outcome.body)
    const wire: WireOutcome = { ...outcome, body: bytes }
    post({ t: 'outcome', seq, outcome: wire }, transfer)
    return
  }
  post({ t: 'outcome', seq, outcome: outcome as WireOutcome })
}

/** Sends a streamed body chunk by chunk, each only while the host has granted a credit. */
async function pump(seq: number, outcome: Extract<Outcome, { kind: 'stream' }>): Promise<void> {
  const state = live.get(seq)
  if (!state) { outcome.body.destroy(); return }
  if (state.cancelled) {
    // Cancelled while its first chunk was awaited: the producer is closed, and the host still
    // gets an answer for the call (it waits for one).
    live.delete(seq)
    outcome.body.destroy()
    post({ t: 'outcome', seq, outcome: { kind: 'error', error: errorRecordOf(state.request.signal.reason, init.development) } })
    return
  }
  state.body = outcome.body
  state.credits ??= 0
  post({ t: 'head', seq, status: outcome.status, headers: outcome.headers })
  try {
    for await (const chunk of outcome.body) {
      if (!live.has(seq)) return
      const bytes: Uint8Array = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk instanceof Uint8Array ? chunk : Buffer.from(String(chunk))
      if (bytes.byteLength === 0) continue
      while (state.credits! <= 0) {
        await new Promise<void>((resolve) => { state.wake = resolve })
        if (!live.has(seq)) return
      }
      state.credits!--
      const [owned, transfer] = sendBytes(bytes)
      post({ t: 'chunk', seq, bytes: owned }, transfer)
    }
    if (live.has(seq)) post({ t: 'end', seq })
  } catch (e) {
    if (live.has(seq)) post({ t: 'abort', seq, error: errorRecordOf(e, init.development) })
  } finally {
    live.delete(seq)
  }
}

function invoke(seq: number, inv: Invocation): void {
  // Bytes arrive as Uint8Array; commands get Buffers, as in process.
  const raw = inv.rawBody
  const rawBody = asBuffer(raw)
  if (inv.body === raw) inv.body = rawBody
  inv.rawBody = rawBody
  const request = new InvokedRequest(inv, log as unknown as PinoLogger)
  live.set(seq, { request })
  let result: unknown
  try {
    const method = methods[inv.command]
    if (typeof method !== 'function') throw new TypeError(`no command "${inv.command}"`)
    result = method.call(instance, inv.params, request)
  } catch (e) {
    sendOutcome(seq, { kind: 'error', error: errorRecordOf(e, init.development) })
    return
  }
  const failed = (e: unknown) => sendOutcome(seq, { kind: 'error', error: errorRecordOf(e, init.development) })
  // The same conversion as in process (results.ts): an async iterable of objects becomes NDJSON or
  // Server-Sent Events here, in the worker, and crosses as bytes like any streamed body.
  const settle = (value: unknown) => {
    const outcome = commandOutcome(value, request, init.development)
    if (outcome instanceof Promise) outcome.then((o) => sendOutcome(seq, o), failed)
    else sendOutcome(seq, outcome)
  }
  if (isThenable(result)) {
    Promise.resolve(result).then(settle, failed)
    return
  }
  settle(result)
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

function cancel(seq: number, reason: 'client-gone' | 'timeout' | 'shutdown'): void {
  // Answering at all proves this worker's event loop still turns: the host's hang check.
  post({ t: 'alive', seq })
  const state = live.get(seq)
  if (!state) return
  state.request.abort(cancelError(reason))
  state.cancelled = true
  if (state.body) {
    live.delete(seq)
    state.body.destroy()
    state.wake?.()
  }
}

async function lifecycle(seq: number, op: string, arg: unknown): Promise<void> {
  try {
    let value: unknown
    if (op === 'canUnload') {
      value = typeof instance.canUnload !== 'function' ? true : (() => { try { return instance.canUnload!(arg as UnloadReason) !== false } catch { return true } })()
    } else if (op === 'exportState') value = await instance.exportState!()
    else if (op === 'importState') await instance.importState!(arg)
    else if (op === 'dispose') {
      for (const state of live.values()) state.request.abort(cancelError('shutdown'))
      await disposeGeneration(arg as UnloadReason)
    }
    post({ t: 'reply', seq, ok: true, value })
  } catch (e) {
    const err = mapErrorStack(e) as Error
    post({ t: 'reply', seq, ok: false, message: String(err?.message ?? err), stack: err?.stack })
  }
}

port.on('message', (batch: ToWorker[]) => { for (const m of batch) receive(m) })

function receive(m: ToWorker): void {
  switch (m.t) {
    case 'invoke': invoke(m.seq, m.inv); break
    case 'cancel': cancel(m.seq, m.reason); break
    case 'credit': {
      const state = live.get(m.seq)
      if (state) {
        state.credits = (state.credits ?? 0) + m.n
        const wake = state.wake
        state.wake = null
        wake?.()
      }
      break
    }
    case 'call': void lifecycle(m.seq, m.op, m.arg); break
  }
}

try {
  const genLog = log.child({})
  const loaded = await instantiate<Extension, CommandTable>(
    { name: init.name, entry: init.entry, generation: init.generation, config: init.config, log: genLog },
    EXTENSION_BASE, 'Extension', commandTable, { shape: init.shape, map: init.map, inputs: init.inputs })
  instance = loaded.instance
  methods = instance as unknown as typeof methods
  disposeGeneration = loaded.dispose
  publishStats()
  post({ t: 'ready', table: loaded.inspected, hooks: { exportState: typeof instance.exportState === 'function', importState: typeof instance.importState === 'function' } })
} catch (e) {
  const err = mapErrorStack(e) as Error
  post({ t: 'failed', message: String(err?.message ?? err), stack: err?.stack })
}
