import path from 'node:path'
import { ResidentError } from '../errors.ts'
import { BuildError, formatMessages } from '../loader/build.ts'
import type { Logger } from '../sdk/types.ts'
import type { Generation } from './generation.ts'
import type { Slot } from './slot.ts'

/**
 * Records a failed load on its slot (errors, lastError, rapid-fail), logs the reason readably
 * (file:line:col and a code frame for build errors) and returns the error the request gets.
 */
export function loadFailure(slot: Slot, e: unknown, o: { log: Logger; reloading: boolean; development: boolean }): ResidentError {
  const reason = e instanceof BuildError ? formatMessages(e.messages) : (e as Error)?.stack ?? String(e)
  slot.loadFailures++
  slot.lastError = { code: 'RES_ERR_LOAD_FAILED', message: e instanceof BuildError ? e.message : String((e as Error)?.message ?? e), at: new Date(), requestId: null }
  o.log.error(`failed to load ${path.relative(process.cwd(), slot.entry)}:\n${reason}`)
  // A failed reload while the old generation keeps serving is not an outage: no rapid-fail count.
  if (!(o.reloading && slot.current) && slot.rapid.recordFailure()) {
    const until = new Date(slot.rapid.retryAt).toISOString()
    o.log.error({ retryAt: until, trips: slot.rapid.trips }, `${slot.name} marked failed after repeated load failures; answering 503 until ${until}`)
  }
  return new ResidentError('RES_ERR_LOAD_FAILED',
    o.development ? `extension "${slot.name}" failed to load: ${slot.lastError.message}` : `extension "${slot.name}" failed to load`,
    { cause: e })
}

/** Where a reload's state comes from: the old generation, or what it exported before it left (no overlap). */
export interface StateSource { id: number; serving: boolean; exportState?: () => unknown }

export function stateOf(gen: Generation | null): StateSource | null {
  const m = gen?.module
  return gen && m ? { id: gen.id, serving: true, exportState: m.exportState ? () => m.exportState!() : undefined } : null
}

/**
 * The optional exportState()/importState() hand-over from `prev` to `next`. On a throw the slot
 * records the error and `discard(next)` retires the new generation; the old one keeps serving if
 * it still is.
 */
export async function handOverState(slot: Slot, prev: StateSource | null, next: Generation, o: { log: Logger; discard: (g: Generation) => Promise<void> }): Promise<void> {
  if (!prev || !prev.exportState || !next.module.importState) return
  try {
    await next.module.importState(await prev.exportState())
  } catch (e) {
    slot.loadFailures++
    slot.lastError = { code: 'RES_ERR_LOAD_FAILED', message: `state carry-over failed: ${String((e as Error)?.message ?? e)}`, at: new Date(), requestId: null }
    o.log.error({ extension: slot.name, err: e }, `state carry-over to ${slot.name} generation ${next.id} failed; ` +
      (prev.serving ? `keeping generation ${prev.id}` : `generation ${prev.id} had already left: the next request loads ${slot.name} again`))
    await o.discard(next)
    throw new ResidentError('RES_ERR_LOAD_FAILED', `extension "${slot.name}" failed to load: ${slot.lastError.message}`, { cause: e })
  }
}
