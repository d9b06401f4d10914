import { Extension, param, type Params, type CommandRequest } from 'resident-host'
import { setTimeout as sleep } from 'node:timers/promises'

/** A streamed response: chunks with small pauses, stopped early if the client goes away. */
export default class Stream extends Extension {
  static override commands = {
    index: { params: { chunks: param.integer({ default: 5, min: 1, max: 100 }), delay: param.integer({ default: 100, min: 0, max: 5000 }) } },
  }

  async *index({ chunks, delay }: Params<typeof Stream.commands.index>, request: CommandRequest) {
    for (let i = 1; i <= chunks; i++) {
      if (request.signal.aborted) return
      yield `chunk ${i} of ${chunks}\n`
      if (i < chunks) await sleep(delay, undefined, { signal: request.signal }).catch(() => undefined)
    }
  }
}
