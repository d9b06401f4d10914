import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeBeginRequest, decodeEndRequest, encodeBeginRequest, encodeEndRequest, encodeRecord, encodeStream, encodeUnknownType,
  FastCgiProtocolError, FCGI_MAX_SENT_CONTENT, RecordReader, Type, type FcgiRecord,
} from '../src/modes/fastcgi/records.ts'
import { decodePairs, encodePair, encodePairRecords, encodePairs, PairCollector } from '../src/modes/fastcgi/pairs.ts'

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex')

// The worked examples of the FastCGI 1.0 layouts (protocols reference §2.1).
describe('FastCGI golden bytes', () => {
  it('BEGIN_REQUEST id=1 RESPONDER keep-conn', () => {
    expect(encodeBeginRequest(1, 1, true)).toEqual(hex('01 01 00 01 00 08 00 00 00 01 01 00 00 00 00 00'))
    expect(decodeBeginRequest(hex('00 01 01 00 00 00 00 00'))).toEqual({ role: 1, keepConn: true })
  })
  it('NV "SERVER_PORT"="80"', () => {
    expect(encodePair('SERVER_PORT', '80')).toEqual(Buffer.concat([hex('0B 02'), Buffer.from('SERVER_PORT80')]))
  })
  it('NV name length 11, value length 300 (4-byte length)', () => {
    const v = 'x'.repeat(300)
    const b = encodePair('SERVER_NAME', v)
    expect(b.subarray(0, 5)).toEqual(hex('0B 80 00 01 2C'))
    expect(b.length).toBe(5 + 11 + 300)
    expect(decodePairs(b)).toEqual([['SERVER_NAME', v]])
  })
  it('the four length combinations 11, 14, 41, 44 decode', () => {
    const long = 'L'.repeat(200)
    const pairs: Array<[string, string]> = [['a', 'b'], ['a', long], [long, 'b'], [long, long]]
    expect(decodePairs(encodePairs(pairs))).toEqual(pairs)
  })
  it('a 4-byte length with the top bit masked (0x80 00 00 80 = 128)', () => {
    const b = Buffer.concat([hex('80 00 00 80 01'), Buffer.from('n'.repeat(128)), Buffer.from('v')])
    expect(decodePairs(b)).toEqual([['n'.repeat(128), 'v']])
  })
  it('PARAMS and STDIN terminators id=1', () => {
    expect(encodeRecord(Type.PARAMS, 1)).toEqual(hex('01 04 00 01 00 00 00 00'))
    expect(encodeRecord(Type.STDIN, 1)).toEqual(hex('01 05 00 01 00 00 00 00'))
  })
  it('END_REQUEST id=1 appStatus 0 REQUEST_COMPLETE', () => {
    expect(encodeEndRequest(1, 0, 0)).toEqual(hex('01 03 00 01 00 08 00 00 00 00 00 00 00 00 00 00'))
    expect(decodeEndRequest(hex('00 00 01 02 02 00 00 00'))).toEqual({ appStatus: 258, protocolStatus: 2 })
  })
  it('GET_VALUES with the three names (48 bytes, management id 0)', () => {
    const body = encodePairs([['FCGI_MAX_CONNS', ''], ['FCGI_MAX_REQS', ''], ['FCGI_MPXS_CONNS', '']])
    expect(encodeRecord(Type.GET_VALUES, 0, body)).toEqual(Buffer.concat([
      hex('01 09 00 00 00 30 00 00'), hex('0E 00'), Buffer.from('FCGI_MAX_CONNS'), hex('0D 00'), Buffer.from('FCGI_MAX_REQS'),
      hex('0F 00'), Buffer.from('FCGI_MPXS_CONNS'),
    ]))
  })
  it('UNKNOWN_TYPE reply for type 200', () => {
    expect(encodeUnknownType(200)).toEqual(hex('01 0B 00 00 00 08 00 00 C8 00 00 00 00 00 00 00'))
  })
  it('pads content to a multiple of 8', () => {
    const r = encodeRecord(Type.STDOUT, 1, Buffer.from('hello'))
    expect(r).toEqual(hex('01 06 00 01 00 05 03 00 68 65 6c 6c 6f 00 00 00'))
  })
  it('the spec\'s example 2: a PARAMS name split across records reads whole', () => {
    const c = new PairCollector(1 << 20)
    c.add(Buffer.from('\x0b\x02SERVER_PORT80\x0b\x0eSER', 'latin1'))
    c.add(Buffer.from('VER_ADDR199.170.183.42', 'latin1'))
    expect(c.finish()).toEqual([['SERVER_PORT', '80'], ['SERVER_ADDR', '199.170.183.42']])
  })
  it('refuses content over 65 535 bytes and splits streams at 65 528', () => {
    expect(() => encodeRecord(Type.STDOUT, 1, Buffer.alloc(65536))).toThrow(RangeError)
    const recs = encodeStream(Type.STDOUT, 1, Buffer.alloc(200_000, 1))
    expect(recs.map((r) => r.readUInt16BE(4))).toEqual([65528, 65528, 65528, 3416])
    for (const r of recs) expect(r.readUInt16BE(4) + r[6]!).toBeLessThanOrEqual(0xffff)
  })
})

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let at = 0
  for (const p of points) { out.push(buf.subarray(at, p)); at = p }
  out.push(buf.subarray(at))
  return out
}

const recordArb = fc.record({
  type: fc.integer({ min: 1, max: 255 }),
  requestId: fc.integer({ min: 0, max: 0xffff }),
  content: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
})

describe('FastCGI codec properties', () => {
  it('records round-trip under any chunking', () => {
    fc.assert(fc.property(fc.array(recordArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (records, cuts) => {
      const wire = Buffer.concat(records.map((r) => encodeRecord(r.type, r.requestId, r.content)))
      const reader = new RecordReader()
      const got: FcgiRecord[] = []
      for (const part of split(wire, cuts)) for (const r of reader.push(part)) got.push({ ...r, content: Buffer.from(r.content) })
      reader.end()
      expect(got).toEqual(records)
    }))
  })

  it('pairs round-trip across records under any chunking, and are never split when sent', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 300 })
    fc.assert(fc.property(fc.array(fc.tuple(text, text), { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (pairs, cuts) => {
      const records = encodePairRecords(Type.PARAMS, 1, pairs)
      for (const r of records) expect(decodePairs(r.subarray(8, 8 + r.readUInt16BE(4))).length).toBeGreaterThan(0)
      const stream = Buffer.concat(records.map((r) => r.subarray(8, 8 + r.readUInt16BE(4))))
      const c = new PairCollector(1 << 24)
      for (const part of split(stream, cuts)) c.add(part)
      expect(c.finish()).toEqual(pairs)
    }))
  })

  it('large pair sets fill records up to 65 528 bytes and never split a pair', () => {
    const pairs: Array<[string, string]> = Array.from({ length: 40 }, (_, i) => [`P${i}`, 'v'.repeat(5000 + i)])
    const records = encodePairRecords(Type.PARAMS, 1, pairs)
    expect(records.length).toBeGreaterThan(1)
    const back = records.flatMap((r) => {
      expect(r.readUInt16BE(4)).toBeLessThanOrEqual(FCGI_MAX_SENT_CONTENT)
      return decodePairs(r.subarray(8, 8 + r.readUInt16BE(4)))
    })
    expect(back).toEqual(pairs)
    expect(() => encodePairRecords(Type.PARAMS, 1, [['BIG', 'x'.repeat(70_000)]])).toThrow(/at most 65528/)
  })

  it('garbage gives a clear error or waits for a bounded record, never more', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
      const reader = new RecordReader()
      try {
        for (const part of split(Buffer.from(bytes), cuts)) reader.push(part)
        // What is held back is at most one record: header + 65 535 + 255.
        expect(reader.pending).toBeLessThan(8 + 0xffff + 0xff + 1)
        try { reader.end() } catch (e) { expect(e).toBeInstanceOf(FastCgiProtocolError); expect((e as Error).message).toMatch(/ended inside a record/) }
      } catch (e) {
        expect(e).toBeInstanceOf(FastCgiProtocolError)
        expect((e as Error).message).toMatch(/version byte/)
      }
    }))
  })

  it('garbage pairs give a clear error', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      try { decodePairs(Buffer.from(bytes)) } catch (e) {
        expect(e).toBeInstanceOf(FastCgiProtocolError)
        expect((e as Error).message).toMatch(/runs past the end/)
      }
    }))
  })

  it('a PARAMS stream over the limit is refused', () => {
    const c = new PairCollector(100)
    expect(() => c.add(Buffer.alloc(101))).toThrow(/larger than 100 bytes/)
  })
})
