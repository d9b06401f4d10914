import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isoNow } from '../src/filters/clock.ts'

describe('the access entry clock', () => {
  it('formats any instant exactly as toISOString does, in any order', () => {
    const instant = fc.integer({ min: 0, max: 4102444800000 })
    fc.assert(fc.property(fc.array(instant, { minLength: 1, maxLength: 20 }), (times) => {
      for (const t of times) expect(isoNow(t)).toBe(new Date(t).toISOString())
    }), { seed: 7, numRuns: 500 })
  })

  it('within one second, only the milliseconds change', () => {
    const base = Date.UTC(2026, 11, 3, 15, 7, 15)
    for (const ms of [0, 5, 42, 999]) expect(isoNow(base + ms)).toBe(new Date(base + ms).toISOString())
  })
})
