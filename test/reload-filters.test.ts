import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readConfigFile, resolveConfig } from '../src/config/load.ts'
import { DevWatcher } from '../src/watch/dev-watcher.ts'
import { startTestServer } from './helpers/server.ts'
import { startWatchedServer, until, type WatchedServer } from './helpers/watch.ts'

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension { hello() { return { hello: 'world' } } }`
const tagger = (tag: string) => `import { Filter } from 'resident-host'
export default class T extends Filter {
  onSendResponse(req, res) { res.setHeader('x-tag', '${tag}') }
}`

let t: WatchedServer | null = null
afterEach(async () => { await t?.close(); t = null })
const tag = async () => (await t!.inject('/echo/hello')).headers['x-tag']

describe('hot reload of filters', () => {
  it('a saved filter reloads in place; a broken save keeps the running chain; the fix recovers', async () => {
    t = await startWatchedServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') } })
    expect(await tag()).toBe('v1')
    t.writeFilter('tag.ts', tagger('v2'))
    await until(async () => (await tag()) === 'v2', 'filter v2 serving')
    await until(() => t!.logs.some((l) => /reloaded filter tag in \d+ ms after a change to tag\.ts/.test(l.msg)), 'filter reload logged')
    t.writeFilter('tag.ts', 'export default class {  // broken')
    await until(() => t!.logs.some((l) => /reload of filter tag failed/.test(l.msg)), 'failure logged')
    expect(await tag()).toBe('v2')
    t.writeFilter('tag.ts', tagger('v3'))
    await until(async () => (await tag()) === 'v3', 'recovered')
  })

  it('a filter file added to the folder joins the chain without a restart', async () => {
    t = await startWatchedServer({ extensions: { 'echo.ts': ECHO }, filters: { 'tag.ts': tagger('v1') } })
    expect(await tag()).toBe('v1')
    t.writeFilter('extra.ts', `import { Filter } from 'resident-host'
export default class X extends Filter { onSendResponse(req, res) { res.setHeader('x-extra', 'yes') } }`)
    await until(async () => (await t!.inject('/echo/hello')).headers['x-extra'] === 'yes', 'new filter in the chain')
    expect(await tag()).toBe('v1')
  })
})

describe('config file changes reach filters', () => {
  it('a changed filters section reloads the chain with it; residency settings apply in place', async () => {
    const greeter = `import { Filter } from 'resident-host'
export default class G extends Filter {
  onSendResponse(req, res) { res.setHeader('x-greeting', String(this.host.config.greeting)) }
}`
    const settings = (greeting: string, idle = '10m') => ({ idleTimeout: idle, filters: { order: [], modules: { greet: { config: { greeting } } } } })
    const s = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'greet.ts': greeter }, config: settings('hello') })
    const file = path.join(s.dir, 'resident.config.json')
    writeFileSync(file, JSON.stringify(settings('hello')))
    s.server.config.file = file
    const watcher = new DevWatcher({
      registry: s.server.registry, config: s.server.config, log: s.server.log, quietMs: 40, filters: s.server.filters,
      rereadConfig: () => resolveConfig({ ...readConfigFile(file).input, extensionsDir: s.extensionsDir, filtersDir: s.filtersDir, logLevel: 'debug' }, { file }),
    })
    await watcher.start()
    try {
      expect((await s.inject('/echo/hello')).headers['x-greeting']).toBe('hello')
      writeFileSync(file, JSON.stringify(settings('bonjour', '5m')))
      await until(async () => (await s.inject('/echo/hello')).headers['x-greeting'] === 'bonjour', 'chain reloaded with the new filter config')
      expect(s.server.config.idleTimeout).toBe(5 * 60_000)
      expect(s.logs.some((l) => /applied idleTimeout, filters/.test(l.msg))).toBe(true)
    } finally {
      await watcher.close()
      await s.close()
    }
  })
})
