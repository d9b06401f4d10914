// The worker mode's outbox: messages of one turn cross in one postMessage, in order; a message that
// cannot be cloned fails alone, the others of its batch still arrive. A real MessageChannel.
import { MessageChannel } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { Outbox } from '../../src/modes/worker/outbox.ts'
import { waitFor } from '../helpers/poll.ts'

describe('worker outbox', () => {
  it('sends the messages of one turn as one batch, in order, transferring what they transfer', async () => {
    const { port1, port2 } = new MessageChannel()
    const batches: unknown[][] = []
    port2.on('message', (b: unknown[]) => batches.push(b))
    const box = new Outbox<unknown>((batch, transfer) => port1.postMessage(batch, transfer), () => { throw new Error('nothing should fail') })
    const bytes = new Uint8Array([1, 2, 3])
    box.push({ n: 1 })
    box.push({ n: 2, bytes }, [bytes.buffer as ArrayBuffer])
    box.push({ n: 3 })
    expect(batches).toEqual([]) // nothing before the turn ends
    await waitFor(() => batches.length === 1, 'the batch')
    expect(batches[0]).toEqual([{ n: 1 }, { n: 2, bytes: new Uint8Array([1, 2, 3]) }, { n: 3 }])
    expect(bytes.byteLength).toBe(0) // transferred
    box.push({ n: 4 })
    await waitFor(() => batches.length === 2, 'the next turn’s batch')
    expect(batches[1]).toEqual([{ n: 4 }])
    port1.close()
  })

  it('a message that cannot be cloned fails alone; the rest of its batch arrives', async () => {
    const { port1, port2 } = new MessageChannel()
    const got: unknown[] = []
    port2.on('message', (b: unknown[]) => got.push(...b))
    const failed: unknown[] = []
    const box = new Outbox<unknown>((batch, transfer) => port1.postMessage(batch, transfer), (q, e) => failed.push([q.m, (e as Error).name]))
    const bad = { n: 2, f: () => 1 }
    box.push({ n: 1 })
    box.push(bad)
    box.push({ n: 3 })
    await waitFor(() => got.length === 2, 'the good messages')
    expect(got).toEqual([{ n: 1 }, { n: 3 }])
    expect(failed).toEqual([[bad, 'DataCloneError']])
    port1.close()
  })
})
