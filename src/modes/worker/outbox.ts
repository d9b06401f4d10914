/** One message waiting in an outbox, with the buffers it transfers. */
export interface Queued<M> { m: M; transfer: ArrayBuffer[] | undefined }

/**
 * Messages for the other side of a worker's port, sent together once per turn of the event loop.
 * A postMessage costs far more than the clone of a small message (the other thread is woken and
 * runs a task for it): under concurrent load, the invocations of one turn cross in one message and
 * the outcomes come back likewise, at a fraction of the cost; a lone request waits only for the
 * end of the current turn (setImmediate). Order is kept: a cancel never overtakes its invocation.
 * `send` posts a batch; if it throws (something in a message cannot be cloned), `failed` is told
 * of each message that cannot go after the others were sent one by one.
 */
export class Outbox<M> {
  #queue: Array<Queued<M>> = []
  #scheduled = false
  readonly #send: (batch: M[], transfer: ArrayBuffer[]) => void
  readonly #failed: (q: Queued<M>, e: unknown) => void

  constructor(send: (batch: M[], transfer: ArrayBuffer[]) => void, failed: (q: Queued<M>, e: unknown) => void) {
    this.#send = send
    this.#failed = failed
  }

  push(m: M, transfer?: ArrayBuffer[]): void {
    this.#queue.push({ m, transfer })
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.flush)
    }
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    this.#scheduled = false
    const queue = this.#queue
    if (queue.length === 0) return
    this.#queue = []
    const transfer: ArrayBuffer[] = []
    for (const q of queue) if (q.transfer) transfer.push(...q.transfer)
    try {
      this.#send(queue.map((q) => q.m), transfer)
    } catch {
      // Nothing was sent (a failed clone transfers nothing): one by one, to find the culprit.
      for (const q of queue) {
        try { this.#send([q.m], q.transfer ?? []) } catch (e) { this.#failed(q, e) }
      }
    }
  }
}
