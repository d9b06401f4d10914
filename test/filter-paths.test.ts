import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compilePaths } from '../src/filters/paths.ts'

// What `static paths` globs mean, written as the regular expression they used to be compiled to.
// That regex backtracks: `/**/**/**/z` against 2000 slashes held the event loop 17 s per request.
function reference(glob: string): RegExp {
  const esc = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`^${glob.split('**').map((part) => part.split('*').map(esc).join('[^/]*')).join('.*')}$`, 'i')
}

describe('filter path globs', () => {
  it('match exactly what the glob says, on any pattern and path', () => {
    const glob = fc.array(fc.constantFrom('/', 'a', 'B', '.', '*', '**', '/*', '/**'), { minLength: 0, maxLength: 8 }).map((p) => `/${p.join('')}`)
    const path = fc.array(fc.constantFrom('/', 'a', 'A', 'b', 'B', '.', 'é', '\u212A'), { maxLength: 12 }).map((p) => `/${p.join('')}`)
    fc.assert(fc.property(glob, path, (g, p) => {
      expect(compilePaths([g])!(p)).toBe(reference(g).test(p))
    }), { seed: 19, numRuns: 5000 })
  })

  it('a RegExp is still used as given', () => {
    const m = compilePaths([/^\/x\//])!
    expect(m('/x/y')).toBe(true)
    expect(m('/y/x/')).toBe(false)
  })

  it('take time in proportion to the path on adversarial input (the regex took minutes)', () => {
    expect(compilePaths(['/**/**/**/z'])!(`${'/'.repeat(4000)}y`)).toBe(false)
    expect(compilePaths(['/**/x/**/y'])!(`${'/x'.repeat(8000)}/q`)).toBe(false)
    expect(compilePaths(['/*a*a*a*b'])!(`/${'a'.repeat(16000)}`)).toBe(false)
    expect(compilePaths(['/**/x/**/y'])!(`${'/x'.repeat(8000)}/y`)).toBe(true)
  })
})
