import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { esmProject } from './helpers/esm-project.ts'
import { waitFor } from './helpers/poll.ts'

// Through the real binary: the test runner's own module loader would hide a missing
// dynamic-import hook, which is exactly what broke `await import('node:crypto')` before.

describe('extensions are ordinary ES modules, in process (real binary)', () => {
  let dir: string
  let url: string
  let stop: () => void
  beforeAll(async () => {
    dir = esmProject().dir
    const s = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters'], { cwd: dir })
    url = s.url
    stop = () => s.child.kill('SIGTERM')
  }, 30_000)
  afterAll(() => { stop?.(); rmSync(dir, { recursive: true, force: true }) })

  it('imports builtins, CommonJS and ESM-only packages, its own files and JSON, statically and with import()', async () => {
    const r = await fetch(`${url}/all/everything`)
    const body = await r.json() as Record<string, unknown>
    expect(r.status, JSON.stringify(body)).toBe(200)
    expect(body.builtin).toBe(true)
    expect(body.cjs).toEqual([4, 'cjs', 6, 'cjs'])
    expect(body.esm).toEqual([6, 'esm-default', 'esm-default', 9])
    expect(body.own).toBe(true)
    expect(body.json).toEqual([true, 42, 42])
  })

  it('runs top-level await in the entry and in its imports', async () => {
    const body = await (await fetch(`${url}/all/everything`)).json() as { tla: string[] }
    expect(body.tla).toEqual(['top-level await in the entry', 'top-level await in an import'])
  })

  it('gives each file its own import.meta: url, filename, dirname, resolve()', async () => {
    const body = await (await fetch(`${url}/all/everything`)).json() as { meta: Record<string, string>; helperMeta: Record<string, string> }
    const ext = path.join(dir, 'extensions/all')
    expect(body.meta).toEqual({
      url: pathToFileURL(path.join(ext, 'index.ts')).href,
      filename: path.join(ext, 'index.ts'),
      dirname: ext,
      resolveRelative: pathToFileURL(path.join(ext, 'lib/helper.ts')).href,
      resolveCjs: pathToFileURL(path.join(dir, 'node_modules/cjs-pkg/main.js')).href,
      resolveEsm: pathToFileURL(path.join(dir, 'node_modules/esm-pkg/index.js')).href,
      resolveBuiltin: 'node:fs',
    })
    expect(body.helperMeta).toEqual({ url: pathToFileURL(path.join(ext, 'lib/helper.ts')).href, dirname: path.join(ext, 'lib') })
  })
})

/** The messages of the server's JSON log lines, unescaped. */
function logText(output: string): string {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    const o = JSON.parse(l) as { msg?: string; err?: { message?: string } }
    return `${o.msg ?? ''}\n${o.err?.message ?? ''}`
  }).join('\n')
}

describe('what cannot work in process says what to do instead (real binary)', () => {
  it('a package that is not installed fails the build naming it and how to install it; a computed path to an own file is refused', async () => {
    const { dir } = esmProject()
    try {
      writeFileSync(path.join(dir, 'extensions/missing.ts'), "import { Extension } from 'resident-host'\nimport nope from 'not-installed'\nexport default class M extends Extension { a() { return nope } }\n")
      writeFileSync(path.join(dir, 'extensions/computed.ts'), "import { Extension } from 'resident-host'\nexport default class C extends Extension {\n  async own() { const p = ['.', 'data.ts'].join('/'); return import(p) }\n}\n")
      writeFileSync(path.join(dir, 'extensions/data.ts'), 'export default 1\n')
      writeFileSync(path.join(dir, 'extensions/oldname.ts'), "import { Extension } from 'resident'\nexport default class O extends Extension { a() { return 1 } }\n")
      const s = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters'], { cwd: dir })
      try {
        expect((await fetch(`${s.url}/missing/a`)).status).toBe(500)
        await waitFor(() => logText(s.output()).includes('Could not resolve'), 'the build error in the log')
        expect(logText(s.output())).toContain('Could not resolve "not-installed" (is it installed? npm install not-installed')
        expect((await fetch(`${s.url}/oldname/a`)).status).toBe(500)
        await waitFor(() => logText(s.output()).includes('"resident" is not Resident\'s SDK'), 'the old-name error')
        expect(logText(s.output())).toMatch(/oldname\.ts:1:\d+: "resident" is not Resident's SDK \(on npm, "resident" is an unrelated package\): import from "resident-host" instead/)
        const r = await fetch(`${s.url}/computed/own`)
        expect(r.status).toBe(500)
        await waitFor(() => /import\("\.\/data\.ts"\) in .*computed\.ts: the path is computed at run time/.test(logText(s.output())), 'the refusal in the log')
        expect(logText(s.output())).toContain('Write the path as a string literal')
      } finally { s.child.kill('SIGTERM') }
    } finally { rmSync(dir, { recursive: true, force: true }) }
  }, 30_000)
})
