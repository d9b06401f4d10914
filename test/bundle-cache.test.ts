// The CGI runner's bundles on disk are reused only while every input is unchanged, and a bundle
// whose inputs changed while it was being built is never kept.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cachedBuild, readCachedBuild } from '../src/loader/bundle-cache.ts'
import { waitFor } from './helpers/poll.ts'

let dir: string
beforeEach(() => { dir = mkdtempSync(path.join(tmpdir(), 'resident-bundle-cache-')) })
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const write = (name: string, code: string) => {
  const file = path.join(dir, name)
  writeFileSync(file, code)
  return file
}
// Until the file system's change time of every file is clearly in the past (stamps of files
// written during a build are not trusted).
const settled = (...files: string[]) => waitFor(() => files.every((f) => Date.now() - statSync(f).ctimeMs > 50), 'files to age')

const EXT = (n: number) => `import { Extension } from 'resident-host'
import { n } from './dep.ts'
export default class E extends Extension { v() { return n + ${n} } }`

describe('cachedBuild (on disk, for the CGI runner)', () => {
  it('reads the bundle back while its inputs are unchanged, and misses once one changes', async () => {
    const cache = path.join(dir, 'cache')
    mkdirSync(cache)
    const entry = write('e.ts', EXT(1))
    const dep = write('dep.ts', 'export const n = 1')
    expect(readCachedBuild(cache, entry)).toBeNull()
    // An input written while the build is under way: the bundle is not kept.
    const during = cachedBuild(entry, cache)
    write('dep.ts', 'export const n = 2')
    await during
    expect(readCachedBuild(cache, entry)).toBeNull()
    await settled(entry, dep)
    const built = await cachedBuild(entry, cache)
    expect(readCachedBuild(cache, entry)).toEqual(built)
    write('dep.ts', 'export const n = 3')
    expect(readCachedBuild(cache, entry)).toBeNull()
  })
})
