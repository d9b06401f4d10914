import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

// The layers of src/, top to bottom: a folder imports only from folders below it (and from the
// ground: config, errors, log, and own.ts and headers.ts, which read untrusted objects and headers). Folders on one line are peers and must not import each other.
const LAYERS = [['cli', 'testing'], ['bench', 'cluster'], ['server'], ['dispatch', 'watch', 'ops'], ['filters', 'residency'], ['modes'], ['loader'], ['sdk']]
const GROUND = new Set(['config', 'errors', 'log', 'own', 'headers'])
const SRC = path.resolve(import.meta.dirname, '../src')

const rank = new Map<string, number>()
LAYERS.forEach((folders, i) => { for (const f of folders) rank.set(f, i) })

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The top folder of a path inside src/ ('errors' for src/errors.ts). */
function folderOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, '')
}

describe('layers', () => {
  it('every folder of src/ is placed in a layer or the ground', () => {
    for (const f of readdirSync(SRC)) {
      const name = f.replace(/\.ts$/, '')
      expect(rank.has(name) || GROUND.has(name), `src/${f} is in no layer (test/layers.test.ts)`).toBe(true)
    }
  })

  it('imports run one way: down the layers, or to the ground; the ground imports only the ground (and sdk types)', () => {
    const problems: string[] = []
    for (const file of files(SRC)) {
      const from = folderOf(file)
      for (const m of readFileSync(file, 'utf8').matchAll(/^(import|export)\s+(type\s+)?[^'"]*from\s+'(\.[^']+)'/gm)) {
        const to = folderOf(path.resolve(path.dirname(file), m[3]!))
        if (to === from) continue
        const typeOnly = m[2] !== undefined
        const ok = GROUND.has(from)
          ? GROUND.has(to) || (to === 'sdk' && typeOnly)
          : GROUND.has(to) || rank.get(to)! > rank.get(from)!
        if (!ok) problems.push(`${path.relative(SRC, file)} imports ${m[3]} (${from} → ${to})`)
      }
    }
    expect(problems).toEqual([])
  })
})
