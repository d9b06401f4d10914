import { validateHeaderName, validateHeaderValue } from 'node:http'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { headerProblem } from '../src/headers.ts'

const nodeAccepts = (name: string, value: unknown) => {
  try {
    validateHeaderName(name)
    for (const v of Array.isArray(value) ? value : [value]) validateHeaderValue(name, typeof v === 'number' ? String(v) : v)
    return true
  } catch {
    return false
  }
}

// Characters around the edges of both rules: controls, HTAB, DEL, separators, Latin-1, beyond it.
const edgy = fc.constantFrom('a', 'Z', '0', '-', '_', '^', '`', '|', '~', '!', '#', '*', '.', ' ', '\t', '\r', '\n', '\0', '\x1f', '\x7f', '\x80', 'é', '\xff', 'Ā', '€', '😀', ':', '"', '(', '/', '@', '[', '{')
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.array(edgy, { maxLength: 8 }).map((a) => a.join('')))

describe('response header checks (src/headers.ts)', () => {
  it('accept exactly what node:http accepts, without loading it (property)', () => {
    const value = fc.oneof(text, fc.integer(), fc.array(text, { maxLength: 3 }), fc.constantFrom(undefined, null, true, Symbol('s'), {}))
    fc.assert(fc.property(text, value, (name, v) => {
      expect(headerProblem(name, v) === null).toBe(nodeAccepts(name, v))
    }), { numRuns: 5000 })
  })

  it('name the problem', () => {
    expect(headerProblem('x-ok', 'fine')).toBeNull()
    expect(headerProblem('bad name', 'v')).toMatch(/"bad name" is not a valid HTTP token/)
    expect(headerProblem('x-split', 'a\r\nSet-Cookie: evil=1')).toMatch(/"x-split" has a value that cannot be sent/)
    expect(headerProblem('x-list', ['ok', 'no\n'])).toMatch(/"x-list"/)
  })
})
