import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, startCli } from './helpers/cli.ts'

// Extensions and filters shipped as npm packages, served where npm installed them (real binary).

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-pkg-'))
  dirs.push(dir)
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    writeFileSync(path.join(dir, f), c)
  }
  return dir
}

const packages = {
  // Declares its entry for Resident: TypeScript source, bundled like any extension.
  'node_modules/@acme/greeter/package.json': JSON.stringify({ name: '@acme/greeter', version: '1.0.0', resident: { entry: './src/greeter.ts' } }),
  'node_modules/@acme/greeter/src/greeter.ts': `import { Extension } from 'resident-host'
import { suffix } from './suffix.ts'
export default class Greeter extends Extension {
  hi({ name = 'you' }: { name?: string }) { return { hello: name + suffix, configured: this.host.config.greeting ?? null } }
}
`,
  'node_modules/@acme/greeter/src/suffix.ts': "export const suffix = '!'\n",
  // Only "exports" with an import condition, compiled JavaScript: the entry Node would load.
  'node_modules/stamp-filter/package.json': JSON.stringify({ name: 'stamp-filter', type: 'module', exports: { '.': { import: './dist/index.js' } } }),
  'node_modules/stamp-filter/dist/index.js': `import { Filter } from 'resident-host'
export default class Stamp extends Filter { onSendResponse(req, res) { res.setHeader('x-stamp', String(this.host.config.stamp)) } }
`,
}

describe('extensions and filters as npm packages', () => {
  it('serves a package named in config, its entry from its own package.json, with its config; a filter likewise', async () => {
    const dir = project({
      ...packages,
      'extensions/.keep': '',
      'resident.config.json': JSON.stringify({
        extensions: { greeter: { package: '@acme/greeter', config: { greeting: 'hey' } } },
        filters: { modules: { stamp: { package: 'stamp-filter', config: { stamp: 7 } } } },
      }),
    })
    const s = await startCli(['serve', '-p', '0'], { cwd: dir })
    try {
      expect(s.output()).toContain('/greeter/')
      const r = await fetch(`${s.url}/greeter/hi?name=ann`)
      expect(r.status).toBe(200)
      expect(await r.json()).toEqual({ hello: 'ann!', configured: 'hey' })
      expect(r.headers.get('x-stamp')).toBe('7')
    } finally { s.child.kill('SIGTERM') }
  })

  it('a package that is not installed, or has no entry, is a config error (exit 2) naming it', async () => {
    const missing = project({ 'resident.config.json': JSON.stringify({ extensions: { x: { package: 'not-there' } } }) })
    const r = await runCli(['serve', '-p', '0'], { cwd: missing })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('"extensions.x.package": package "not-there" is not installed')
    const empty = project({
      'node_modules/empty-pkg/package.json': JSON.stringify({ name: 'empty-pkg' }),
      'resident.config.json': JSON.stringify({ filters: { modules: { e: { package: 'empty-pkg' } } } }),
    })
    const e = await runCli(['serve', '-p', '0'], { cwd: empty })
    expect(e.code).toBe(2)
    expect(e.stderr).toContain('package "empty-pkg"')
    expect(e.stderr).toContain('has no entry')
  })
})
