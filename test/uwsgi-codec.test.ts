import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeUwsgiVars, encodeUwsgiRequest, UwsgiHeadReader, UwsgiProtocolError } from '../src/modes/uwsgi/codec.ts'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex')

describe('uwsgi codec: golden bytes', () => {
  // The request start the protocol reference shows: modifier1 0, a 37-byte vars block.
  const golden = hex(`00 2500 00
    0e00 ${ascii('REQUEST_METHOD')} 0300 ${ascii('GET')}
    0c00 ${ascii('QUERY_STRING')} 0000`)

  it('encodes the header (little-endian size) and the vars block', () => {
    expect(encodeUwsgiRequest([['REQUEST_METHOD', 'GET'], ['QUERY_STRING', '']])).toEqual(golden)
  })

  it('decodes the same bytes, and the body starts right after the block', () => {
    const reader = new UwsgiHeadReader()
    const out = reader.push(Buffer.concat([golden, Buffer.from('body')]))!
    expect(out.head).toEqual({ modifier1: 0, modifier2: 0, vars: new Map([['REQUEST_METHOD', 'GET'], ['QUERY_STRING', '']]) })
    expect(out.rest.toString()).toBe('body')
  })

  it('a size over 255 takes both bytes (256 = 00 01)', () => {
    const value = 'x'.repeat(256 - 2 - 1 - 2)
    const packet = encodeUwsgiRequest([['K', value]])
    expect([...packet.subarray(0, 4)]).toEqual([0, 0x00, 0x01, 0])
  })

  it('refuses a vars block over 65535 bytes', () => {
    expect(() => encodeUwsgiRequest([['A', 'x'.repeat(40000)], ['B', 'y'.repeat(40000)]])).toThrow(/65535/)
  })
})

describe('uwsgi codec: properties', () => {
  const name = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ_'), minLength: 1, maxLength: 40 })
  const value = fc.string({ maxLength: 300 })
  const vars = fc.uniqueArray(fc.tuple(name, value), { selector: ([k]) => k, maxLength: 20 })

  it('round-trips under arbitrary chunking, body bytes intact', () => {
    fc.assert(fc.property(vars, fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat({ max: 50 }), { maxLength: 30 }), (pairs, body, cuts) => {
      const latin = pairs.map(([k, v]) => [k, Buffer.from(v, 'latin1').toString('latin1')] as const)
      const bytes = Buffer.concat([encodeUwsgiRequest(latin, 0, 0), Buffer.from(body)])
      const reader = new UwsgiHeadReader()
      let at = 0
      let got: ReturnType<UwsgiHeadReader['push']>
      const rest: Buffer[] = []
      for (const cut of [...cuts, bytes.length]) {
        if (at >= bytes.length) break
        const piece = bytes.subarray(at, Math.min(bytes.length, at + Math.max(1, cut)))
        at += piece.length
        if (got) rest.push(piece)
        else got = reader.push(piece)
        if (got && rest.length === 0) rest.push(got.rest)
      }
      if (at < bytes.length) {
        const piece = bytes.subarray(at)
        if (got) rest.push(piece)
        else { got = reader.push(piece); if (got) rest.push(got.rest) }
      }
      expect(got).toBeDefined()
      expect([...got!.head.vars]).toEqual(latin)
      expect(Buffer.concat(rest)).toEqual(Buffer.from(body))
    }))
  })

  it('garbage gives a clear error or waits for more bytes; it never returns vars that were not sent', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
      const reader = new UwsgiHeadReader(4096)
      try {
        const out = reader.push(Buffer.from(garbage))
        if (out) {
          const size = Buffer.from(garbage).readUInt16LE(1)
          expect(size).toBeLessThanOrEqual(garbage.length - 4)
        }
      } catch (e) {
        expect(e).toBeInstanceOf(UwsgiProtocolError)
      }
    }))
  })

  it('a key or value that runs past the block is an error that says so', () => {
    expect(() => decodeUwsgiVars(hex('0500 4142'))).toThrow(/runs past/)
    expect(() => decodeUwsgiVars(hex(`0100 41 0900 ${ascii('ab')}`))).toThrow(/runs past/)
    expect(() => decodeUwsgiVars(hex('01'))).toThrow(/truncated/)
  })

  it('a peer announcing a block over the cap is refused before it is buffered', () => {
    expect(() => new UwsgiHeadReader(4096).push(hex('00 0110 00'))).toThrow(/4096/)
  })
})
