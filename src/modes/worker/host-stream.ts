import { Readable } from 'node:stream'
import { asBuffer } from './transfer.ts'

/**
 * A streamed body arriving from a worker, as the response pulls it: each `_read()` tops the
 * worker's credit up to the window, so at most `window` chunks are ever in flight or queued, and a
 * slow client slows the worker's producer down. Destroying it (the client left) tells the worker.
 */
export class CreditedStream extends Readable {
  readonly #grant: (n: number) => void
  readonly #stop: () => void
  readonly #window: number
  /** Chunks granted and not yet received. */
  #outstanding = 0
  #done = false

  constructor(window: number, grant: (n: number) => void, stop: () => void) {
    super({ highWaterMark: 1 })
    this.#window = window
    this.#grant = grant
    this.#stop = stop
  }

  override _read(): void {
    const n = this.#window - this.#outstanding
    if (n > 0 && !this.#done) {
      this.#outstanding += n
      this.#grant(n)
    }
  }

  /** A chunk from the worker. */
  chunk(bytes: Uint8Array): void {
    this.#outstanding--
    this.push(asBuffer(bytes))
  }

  end(): void {
    this.#done = true
    this.push(null)
  }

  fail(e: Error): void {
    this.#done = true
    this.destroy(e)
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.#done) {
      this.#done = true
      this.#stop()
    }
    cb(err)
  }
}
