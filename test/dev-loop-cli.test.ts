import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, spawnInProject, stopProjectProcesses, type ProjectProcess } from './helpers/cli.ts'
import { until } from './helpers/watch.ts'

// resident dev tells at once (real binary): broken extensions at start-up, a short block for a
// failed request, a saved template reloads its folder extension, a missing --extensions folder.

type Proc = ProjectProcess
const procs: Proc[] = []

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'resident-devloop-'))
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    writeFileSync(path.join(dir, f), c)
  }
  return dir
}

function dev(dir: string, args: string[] = ['-e', 'extensions']): Proc {
  // NO_COLOR and no TTY: the pretty log is plain text, as a terminal shows it without colours.
  return spawnInProject(procs, dir, ['dev', '-p', '0', ...args], { NO_COLOR: '1', FORCE_COLOR: '0' })
}

afterEach(() => stopProjectProcesses(procs))

const GOOD = `import { Extension } from 'resident-host'
export default class Good extends Extension { hi() { return 'hi' } }
`
const BROKEN = `import { Extension } from 'resident-host'
export default class Broken extends Extension {
  hi() { return 'missing brace' 
}
`

describe('resident dev tells at once', () => {
  it('builds every extension at start-up and reports the broken ones before any request', async () => {
    const p = dev(project({ 'extensions/good.ts': GOOD, 'extensions/broken.ts': BROKEN, 'filters/.keep': '' }))
    await until(() => p.url(), 'listening')
    await until(() => p.text().includes('1 extension failed to load: broken'), 'the start-up report')
    expect(p.text()).toMatch(/failed to load extensions\/broken\.ts:\nbroken\.ts:\d+:\d+: /)
    expect(p.text()).toContain('loaded good (generation 1)')
  })

  it('a failed request logs a short block that states the build error once', async () => {
    const p = dev(project({ 'extensions/broken.ts': BROKEN }))
    const base = await until(() => p.url(), 'listening')
    await until(() => p.text().includes('failed to load: broken'), 'the start-up report')
    const before = p.text().length
    const r = await fetch(`${base}/broken/hi`)
    expect(r.status).toBe(500)
    const block = await until(() => { const t = p.text().slice(before); return t.includes('GET /broken/hi failed') ? t : null }, 'the request block')
    const buildError = /broken\.ts:\d+:\d+: [^\n]+/.exec(block)![0]
    expect(block.split(buildError).length - 1, block).toBe(1)
    expect(block.trimEnd().split('\n').length, block).toBeLessThanOrEqual(12)
  })

  it('saving a file of a folder extension that it reads (not imports) reloads it', async () => {
    const dir = project({
      'extensions/page/index.ts': `import { Extension } from 'resident-host'
import { readFileSync } from 'node:fs'
const template = readFileSync(new URL('./views/page.html', import.meta.url), 'utf8')
export default class Page extends Extension { show() { return { html: template.trim() } } }
`,
      'extensions/page/views/page.html': '<p>one</p>\n',
    })
    const p = dev(dir)
    const base = await until(() => p.url(), 'listening')
    const show = async () => ((await (await fetch(`${base}/page/show`)).json()) as { html: string }).html
    expect(await show()).toBe('<p>one</p>')
    writeFileSync(path.join(dir, 'extensions/page/views/page.html'), '<p>two</p>\n')
    await until(async () => (await show()) === '<p>two</p>', 'the reload after saving the template')
  })

  it('--extensions naming a missing folder: serve exits 2, dev warns and picks it up once it exists', async () => {
    const dir = project({ 'filters/.keep': '' })
    const served = await runCli(['serve', '-p', '0', '-e', 'nowhere'], { cwd: dir })
    expect(served.code).toBe(2)
    expect(served.stderr).toContain('--extensions nowhere: no such folder')
    const p = dev(dir, ['-e', 'later'])
    const base = await until(() => p.url(), 'listening')
    expect(p.text()).toContain('--extensions later: no such folder')
    mkdirSync(path.join(dir, 'later'))
    writeFileSync(path.join(dir, 'later/good.ts'), GOOD)
    await until(async () => (await fetch(`${base}/good/hi`)).status === 200, 'the extension in the folder made later')
  })
})
