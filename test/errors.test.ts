import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { errors } from '../src/errors.ts'

const readme = readFileSync(path.resolve(import.meta.dirname, '../docs/reference/errors.md'), 'utf8')
const documented = new Map<string, string>()
for (const m of readme.matchAll(/^\| `(RES_ERR_[A-Z_]+)` \| (\d{3}|—) \|/gm)) documented.set(m[1]!, m[2]!)

describe('the error registry and docs/reference/errors.md', () => {
  it.each(Object.entries(errors))('%s is documented with its status', (code, def) => {
    expect(documented.has(code), `${code} is missing from docs/reference/errors.md`).toBe(true)
    if (code !== 'RES_ERR_CONFIG') expect(documented.get(code)).toBe(String(def.status))
  })

  it('documents no code the registry lacks', () => {
    for (const code of documented.keys()) expect(Object.keys(errors), `${code} is documented but not in src/errors.ts`).toContain(code)
  })

  it('every code the source raises is in the registry', () => {
    const src = path.resolve(import.meta.dirname, '../src')
    const files = (readdirRecursive(src)).filter((f) => f.endsWith('.ts'))
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/'(RES_ERR_[A-Z_]+)'/g)) {
        expect(Object.keys(errors), `${path.relative(src, f)} uses ${m[1]}`).toContain(m[1])
      }
    }
  })
})

function readdirRecursive(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e)
    return statSync(p).isDirectory() ? readdirRecursive(p) : [p]
  })
}
