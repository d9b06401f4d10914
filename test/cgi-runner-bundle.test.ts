import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ensureRunnerBundle } from '../src/modes/cgi/runner-bundle.ts'

// The bundle cache is shared by every checkout and installation a user runs (one folder per
// user): the cgi mode's runner built from one tree must never be what another tree runs.
describe('the cgi runner bundle in a shared cache', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-runner-bundle-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('is built per runner source: two trees sharing one cache each get their own', async () => {
    const cache = path.join(dir, 'cache')
    mkdirSync(cache)
    const entries = ['one', 'two'].map((tree) => {
      const file = path.join(dir, tree, 'src', 'cli', 'cgi-runner.ts')
      mkdirSync(path.dirname(file), { recursive: true })
      writeFileSync(file, `console.log('runner of tree ${tree}')\n`)
      return file
    })
    const first = await ensureRunnerBundle(cache, entries[0])
    const second = await ensureRunnerBundle(cache, entries[1])
    expect(readFileSync(first, 'utf8')).toContain('runner of tree one')
    expect(readFileSync(second, 'utf8')).toContain('runner of tree two')
    // Each is still current for its own tree: reused, not rebuilt.
    expect(await ensureRunnerBundle(cache, entries[0])).toBe(first)
    expect(readFileSync(await ensureRunnerBundle(cache, entries[1]), 'utf8')).toContain('runner of tree two')
  })
})
