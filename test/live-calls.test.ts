import { describe, expect, it } from 'vitest'
import { LiveCalls } from '../src/modes/live-calls.ts'

describe('LiveCalls', () => {
  it('keeps every call of an id (ids may repeat) until each is forgotten', () => {
    const live = new LiveCalls()
    const a = live.start('r1')
    const b = live.start('r1')
    const other = live.start('r2')
    expect(live.of('r1')).toEqual([a.controller, b.controller])
    a.forget()
    expect(live.of('r1')).toEqual([b.controller])
    b.forget()
    b.forget()
    expect(live.of('r1')).toEqual([])
    expect(live.of('r2')).toEqual([other.controller])
    // A call started after the id's set emptied is tracked afresh.
    const c = live.start('r1')
    a.forget()
    expect(live.of('r1')).toEqual([c.controller])
  })
})
