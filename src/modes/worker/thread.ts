import { Worker } from 'node:worker_threads'
import type { Logger as PinoLogger } from 'pino'
import type { WorkerSettings } from '../../config/types.ts'
import type { CommandTable } from '../commands.ts'
import type { CancelReason, Invocation } from '../invocation.ts'
import type { ErrorRecord, Outcome } from '../outcome.ts'
import { CreditedStream } from './host-stream.ts'
import { Outbox } from './outbox.ts'
import { CREDIT_WINDOW, STAT_EXTERNAL, STAT_HEAP_TOTAL, STAT_HEAP_USED, type FromWorker, type LifecycleOp, type ToWorker, type WorkerInit } from './protocol.ts'
import { transferable } from './transfer.ts'

/** Why a worker stopped: what the requests it was running are told. */
export interface ThreadExit {
  /** 'crash': uncaught exception, process.exit(), heap limit; 'hung': no answer after a deadline; 'memory': over maxExternal; 'stopped': the host terminated it. */
  kind: 'crash' | 'hung' | 'memory' | 'stopped'
  message: string
  code: number
}

interface Call {
  seq: number
  id: string
  resolve: (o: Outcome) => void
  stream: CreditedStream | null
}

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void }

/**
 * The host's side of one worker thread: its calls by sequence number, its streamed bodies, its
 * heap figures, and what becomes of all of them when the thread exits. Failure is known only from
 * 'exit' (messages posted before it have all arrived by then), so that is where every outstanding
 * call is answered.
 */
export class WorkerThread {
  readonly worker: Worker
  readonly #calls = new Map<number, Call>()
  readonly #lifecycle = new Map<number, Pending>()
  readonly #stats: Float64Array
  readonly #log: PinoLogger
  readonly #settings: WorkerSettings
  readonly #onExit: (thread: WorkerThread, exit: ThreadExit) => void
  readonly #development: boolean
  #seq = 0
  readonly #outbox: Outbox<ToWorker>
  #error: Error | null = null
  #stopping: ThreadExit | null = null
  #hangTimers = new Set<NodeJS.Timeout>()
  readonly ready: Promise<{ table: CommandTable; hooks: { exportState: boolean; importState: boolean } }>
  exited = false
  /** When it was started, and the requests it was given since (for the dashboard). */
  readonly startedAt = new Date().toISOString()
  requests = 0
  /** Requests (and lifecycle calls) running on this worker now. */
  get inFlight(): number { return this.#calls.size }
  /**
   * A call on it passed its deadline and the worker has not yet shown that its event loop turns:
   * it may be spinning, so no new request should queue behind it until the verdict.
   */
  get suspect(): boolean { return this.#awaitingAlive.size > 0 && !this.exited }
  readonly #verdict: Array<() => void> = []

  constructor(script: URL | string, init: Omit<WorkerInit, 'stats'>, settings: WorkerSettings, log: PinoLogger, onExit: (thread: WorkerThread, exit: ThreadExit) => void) {
    const stats = new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT)
    this.#stats = new Float64Array(stats)
    this.#log = log
    this.#settings = settings
    this.#onExit = onExit
    this.#development = init.development
    let settle: { resolve: (v: { table: CommandTable; hooks: { exportState: boolean; importState: boolean } }) => void; reject: (e: Error) => void }
    this.ready = new Promise((resolve, reject) => { settle = { resolve, reject } })
    this.ready.catch(() => undefined)
    const workerData: WorkerInit = { ...init, stats }
    // The worker's own stdout and stderr go to the host's: an extension's console.log shows as in process.
    this.worker = new Worker(script, { workerData, resourceLimits: settings.resourceLimits, name: `resident:${init.name}#${init.generation}` })
    this.#outbox = new Outbox<ToWorker>(
      (batch, transfer) => { if (!this.exited) this.worker.postMessage(batch, transfer) },
      (q, e) => this.#unsendable(q.m, e))
    const receive = (m: FromWorker) => {
      if (m.t === 'ready') settle.resolve({ table: m.table, hooks: m.hooks })
      else if (m.t === 'failed') settle.reject(Object.assign(new Error(m.message), { stack: m.stack ?? m.message }))
      else this.#receive(m)
    }
    // The worker sends its messages in batches (see outbox.ts); its log lines come one by one.
    this.worker.on('message', (m: FromWorker | FromWorker[]) => {
      if (Array.isArray(m)) for (const one of m) receive(one)
      else receive(m)
    })
    // Without an 'error' listener an extension's throw would take the host down with it.
    this.worker.on('error', (e) => { this.#error = e })
    this.worker.on('exit', (code) => {
      this.exited = true
      for (const t of this.#hangTimers) clearTimeout(t)
      const exit = this.#stopping ?? describeExit(this.#error, code)
      settle.reject(new Error(`the worker stopped before it was ready: ${exit.message}`))
      this.#failAll(exit)
      this.#onExit(this, exit)
      // After the pool heard of the exit (and scheduled the replacement those waiting will use).
      this.#cleared()
    })
  }

  /** Whether call `id` (a request id) is running on this worker. */
  runs(id: string): boolean {
    for (const call of this.#calls.values()) if (call.id === id) return true
    return false
  }

  /** Heap figures the worker published (at most 250 ms old; stale while it is busy). */
  memory(): { heapUsed: number; heapTotal: number; external: number } {
    return { heapUsed: this.#stats[STAT_HEAP_USED]!, heapTotal: this.#stats[STAT_HEAP_TOTAL]!, external: this.#stats[STAT_EXTERNAL]! }
  }

  #post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.exited) this.#outbox.push(m, transfer)
  }

  /** A message that cannot be cloned (a header value a filter set, say): its call fails, nothing else does. */
  #unsendable(m: ToWorker, e: unknown): void {
    if (m.t === 'invoke') {
      const call = this.#calls.get(m.seq)
      this.#calls.delete(m.seq)
      call?.resolve({ kind: 'error', error: { status: 500, code: 'RES_ERR_INTERNAL', message: `the request cannot be sent to the worker: ${(e as Error).message}`, headers: {} } })
    } else if (m.t === 'call') {
      const p = this.#lifecycle.get(m.seq)
      this.#lifecycle.delete(m.seq)
      p?.reject(new Error(`the call cannot be sent to the worker: ${(e as Error).message}`))
    }
  }

  invoke(inv: Invocation): Promise<Outcome> {
    const seq = ++this.#seq
    this.requests++
    return new Promise<Outcome>((resolve) => {
      this.#calls.set(seq, { seq, id: inv.id, resolve, stream: null })
      // The request body is transferred, not copied (a pooled Buffer is copied: see transfer.ts).
      let message: Invocation = inv
      let transfer: ArrayBuffer[] | undefined
      if (inv.rawBody.byteLength > 0) {
        const raw = transferable(inv.rawBody)
        message = { ...inv, rawBody: raw, body: inv.body === inv.rawBody ? raw : inv.body }
        transfer = [raw.buffer as ArrayBuffer]
      } else if (inv.body === inv.rawBody) {
        message = { ...inv, rawBody: new Uint8Array(0), body: undefined }
      } else {
        message = { ...inv, rawBody: new Uint8Array(0) }
      }
      this.#post({ t: 'invoke', seq, inv: message }, transfer)
    })
  }

  /** Cancels the calls with this request id; after a deadline, a worker that does not answer within hangGrace is hung. */
  cancel(id: string, reason: CancelReason, onHung: () => void): boolean {
    let found = false
    for (const call of this.#calls.values()) {
      if (call.id !== id) continue
      found = true
      this.#post({ t: 'cancel', seq: call.seq, reason })
      if (reason !== 'timeout') continue
      const seq = call.seq
      const timer = setTimeout(() => {
        this.#hangTimers.delete(timer)
        if (!this.exited && this.#awaitingAlive.has(seq)) onHung()
      }, this.#settings.hangGrace)
      timer.unref()
      this.#hangTimers.add(timer)
      this.#awaitingAlive.add(seq)
    }
    return found
  }

  readonly #awaitingAlive = new Set<number>()

  /** Resolves once the worker is no longer suspect: it answered the cancellation, or it exited. */
  verdict(): Promise<void> {
    if (!this.suspect) return Promise.resolve()
    return new Promise((resolve) => { this.#verdict.push(resolve) })
  }

  #cleared(): void {
    for (const resolve of this.#verdict.splice(0)) resolve()
  }

  /** Asks the worker to run a lifecycle method; rejects if it fails or the worker exits first. */
  call(op: LifecycleOp, arg?: unknown): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error('the worker has exited'))
    const seq = ++this.#seq
    return new Promise((resolve, reject) => {
      this.#lifecycle.set(seq, { resolve, reject })
      this.#post({ t: 'call', seq, op, arg })
    })
  }

  /** Terminates the thread; its outstanding calls are answered as `exit` says. */
  async stop(exit: ThreadExit): Promise<void> {
    if (this.exited) return
    this.#stopping ??= exit
    await this.worker.terminate()
  }

  #receive(m: FromWorker): void {
    switch (m.t) {
      case 'outcome': {
        const call = this.#calls.get(m.seq)
        if (!call) return
        this.#calls.delete(m.seq)
        call.resolve(m.outcome)
        return
      }
      case 'head': {
        const call = this.#calls.get(m.seq)
        if (!call) return
        const seq = m.seq
        const stream = new CreditedStream(CREDIT_WINDOW, (n) => this.#post({ t: 'credit', seq, n }), () => {
          // The response no longer wants it (client gone): stop the worker's producer.
          if (this.#calls.delete(seq)) this.#post({ t: 'cancel', seq, reason: 'client-gone' })
        })
        call.stream = stream
        call.resolve({ kind: 'stream', status: m.status, headers: m.headers, body: stream })
        return
      }
      case 'chunk': this.#calls.get(m.seq)?.stream?.chunk(m.bytes); return
      case 'end': {
        const call = this.#calls.get(m.seq)
        this.#calls.delete(m.seq)
        call?.stream?.end()
        return
      }
      case 'abort': {
        const call = this.#calls.get(m.seq)
        this.#calls.delete(m.seq)
        call?.stream?.fail(Object.assign(new Error(m.error.message), { code: m.error.code, stack: m.error.stack }))
        return
      }
      case 'alive':
        this.#awaitingAlive.delete(m.seq)
        if (this.#awaitingAlive.size === 0) this.#cleared()
        return
      case 'reply': {
        const p = this.#lifecycle.get(m.seq)
        if (!p) return
        this.#lifecycle.delete(m.seq)
        if (m.ok) p.resolve(m.value)
        else p.reject(Object.assign(new Error(m.message), { stack: m.stack ?? m.message }))
        return
      }
      case 'log': {
        const target = Object.keys(m.bindings).length > 0 ? this.#log.child(m.bindings) : this.#log
        ;(target[m.level as 'info'] as (o: unknown, msg?: string) => void).call(target, m.obj, m.msg)
        return
      }
    }
  }

  /** Every call still outstanding when the thread exits: 502 (or the given answer), streams cut off. */
  #failAll(exit: ThreadExit): void {
    const record: ErrorRecord = exitRecord(exit, this.#development)
    for (const call of this.#calls.values()) {
      if (call.stream) call.stream.fail(Object.assign(new Error(record.message), { code: record.code }))
      else call.resolve({ kind: 'error', error: record })
    }
    this.#calls.clear()
    for (const p of this.#lifecycle.values()) p.reject(new Error(`the worker stopped: ${exit.message}`))
    this.#lifecycle.clear()
    this.#awaitingAlive.clear()
  }
}

function describeExit(error: Error | null, code: number): ThreadExit {
  if (error) {
    const oom = (error as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY'
    return { kind: 'crash', message: oom ? 'it reached its heap limit' : `uncaught ${error.name ?? 'exception'}: ${error.message}`, code }
  }
  return { kind: 'crash', message: `it exited with code ${code}`, code }
}

/** What the requests of an exited worker are answered with. */
function exitRecord(exit: ThreadExit, development: boolean): ErrorRecord {
  if (exit.kind === 'stopped') return { status: 503, code: 'RES_ERR_UNAVAILABLE', message: 'the extension was unloaded while the request ran', headers: {} }
  // What crashed it (an extension's exception message) is for the log, and the client in development.
  const why = exit.kind === 'crash' ? (development ? exit.message : 'it crashed') : exit.message
  return { status: 502, code: 'RES_ERR_WORKER_CRASHED', message: `the worker running this request stopped (${why}); it has been replaced`, headers: {} }
}
