import { describe, expect, it } from 'vitest'
import { forceGc } from '../src/residency/collection.ts'

// Admission reads memory right after the GC it forces, to decide whether a load now fits: the
// Buffers that GC found dead must not still count then. V8 frees them on another thread after a
// full GC unless something makes it finish (forceGc does).
describe('forceGc', () => {
  it('returns with the dead Buffers already freed, round after round', () => {
    const MB = 1024 * 1024
    forceGc('collection')
    const base = process.memoryUsage().arrayBuffers
    for (let round = 0; round < 6; round++) {
      let held: Buffer[] | null = []
      for (let i = 0; i < 48; i++) held.push(Buffer.alloc(MB, i))
      expect(process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(base + 48 * MB)
      held = null
      expect(forceGc('collection')).toBe(true)
      // Read synchronously: no turn of the event loop in which a background sweep could finish.
      expect(process.memoryUsage().arrayBuffers, `round ${round}`).toBeLessThan(base + 4 * MB)
    }
  })
})
