import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readConfigFile, resolveConfig } from '../src/config/load.ts'
import { DevWatcher } from '../src/watch/dev-watcher.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { until, versioned } from './helpers/watch.ts'

let t: TestServer | null = null
let watcher: DevWatcher | null = null
afterEach(async () => { await watcher?.close(); watcher = null; await t?.close(); t = null })

describe('operator reload: POST /_resident/extensions/<name>/reload', () => {
  it('reloads a loaded extension in place, loads one that is not loaded yet, 404s unknown names, 500s a broken build', async () => {
    t = await startTestServer({ extensions: { 'ext.ts': versioned(1), 'idle.ts': versioned('idle') } })
    expect((await t.inject('/ext/v')).json()).toEqual({ v: 1 })
    t.writeExtension('ext.ts', versioned(2))
    const r = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/ext/reload' })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({ name: 'ext', state: 'resident', generation: 2 })
    expect((await t.inject('/ext/v')).json()).toEqual({ v: 2 })

    expect(t.server.registry.slots.get('idle')?.current ?? null).toBeNull()
    const first = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/idle/reload' })
    expect(first.statusCode).toBe(200)
    expect(first.json()).toMatchObject({ name: 'idle', generation: 1 })
    expect(t.server.registry.slots.get('idle')?.current?.id).toBe(1)

    const missing = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/nope/reload' })
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error).toMatchObject({ code: 'RES_ERR_NOT_FOUND' })
    expect(missing.json().error.requestId).toEqual(expect.any(String))
    expect(t.server.registry.slots.has('nope')).toBe(false)

    t.writeExtension('ext.ts', 'export default class {')
    const broken = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/ext/reload' })
    expect(broken.statusCode).toBe(500)
    expect(broken.json().error).toMatchObject({ code: 'RES_ERR_LOAD_FAILED' })
    expect((await t.inject('/ext/v')).json()).toEqual({ v: 2 })
  })

  it('is refused to non-loopback callers without the token', async () => {
    t = await startTestServer({ extensions: { 'ext.ts': versioned(1) } })
    const r = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/ext/reload', remoteAddress: '203.0.113.9' })
    expect(r.statusCode).toBe(403)
    expect(r.json().error.code).toBe('RES_ERR_ADMIN_FORBIDDEN')
  })

  it('100 reloads under concurrent requests: no failed request, every answer from the old or the new version', async () => {
    t = await startTestServer({ extensions: { 'ext.ts': versioned(0, '  async slow() { await new Promise((r) => setTimeout(r, 3)); return this.v() }') } })
    const base = await t.listen()
    expect((await t.inject('/ext/v')).json()).toEqual({ v: 0 })
    let running = true
    const failures: string[] = []
    const client = async () => {
      let last = -1
      let n = 0
      while (running) {
        const url = n++ % 2 ? `${base}/ext/slow` : `${base}/ext/v`
        try {
          const r = await fetch(url)
          if (r.status !== 200) { failures.push(`${r.status} ${await r.text()}`); continue }
          const { v } = await r.json() as { v: number }
          // Versions only move forward for a client, and are always a whole, served version.
          if (!Number.isInteger(v) || v < last) failures.push(`version ${v} after ${last}`)
          last = v
        } catch (e) { failures.push(String(e)) }
      }
      return n
    }
    const clients = Array.from({ length: 4 }, client)
    for (let i = 1; i <= 100; i++) {
      t.writeExtension('ext.ts', versioned(i, '  async slow() { await new Promise((r) => setTimeout(r, 3)); return this.v() }'))
      const r = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/ext/reload' })
      expect(r.statusCode).toBe(200)
    }
    running = false
    const counts = await Promise.all(clients)
    expect(failures).toEqual([])
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(100)
    expect((await t.inject('/ext/v')).json()).toEqual({ v: 100 })
    await until(() => t!.server.registry.slots.get('ext')!.retired.filter((r) => r.reason === 'reload').length >= 20, 'old generations disposed')
  }, 120_000)
})

describe('config file changes in dev', () => {
  it('reloads extensions whose config changed, reports restart-only settings, keeps the old config when invalid', async () => {
    const ext = `import { Extension } from 'resident-host'
export default class G extends Extension { hi() { return { greeting: this.host.config.greeting ?? null } } }
`
    t = await startTestServer({ extensions: { 'g.ts': ext, 'other.ts': versioned(1) }, config: { extensions: { g: { config: { greeting: 'hello' } } } } })
    const file = path.join(t.dir, 'resident.config.json')
    const { extensionsDir, filtersDir } = t
    const write = (o: object) => writeFileSync(file, JSON.stringify({ logLevel: 'debug', ...o }))
    write({ extensions: { g: { config: { greeting: 'hello' } } } })
    t.server.config.file = file
    watcher = new DevWatcher({
      registry: t.server.registry, config: t.server.config, log: t.server.log, quietMs: 40,
      rereadConfig: () => resolveConfig({ ...readConfigFile(file).input, extensionsDir, filtersDir }, { file }),
    })
    await watcher.start()
    expect((await t.inject('/g/hi')).json()).toEqual({ greeting: 'hello' })
    expect((await t.inject('/other/v')).json()).toEqual({ v: 1 })

    write({ extensions: { g: { config: { greeting: 'bonjour' } } } })
    await until(async () => (await t!.inject('/g/hi')).json().greeting === 'bonjour', 'g reloaded with its new config')
    await watcher.idle()
    expect(t.server.registry.slots.get('other')!.current!.id).toBe(1)

    write({ port: 4321, extensions: { g: { config: { greeting: 'bonjour' } } } })
    await until(() => t!.logs.some((l) => /config: port \(\d+ → 4321\) changed: restart resident to apply it/.test(l.msg)), 'restart warning')

    write({ extensions: { g: { config: { greeting: 'nope' } } }, bogus: true })
    await until(() => t!.logs.some((l) => /is invalid; keeping the previous configuration:[\s\S]*unknown setting "bogus"/.test(l.msg)), 'invalid config reported')
    await watcher.idle()
    expect((await t.inject('/g/hi')).json()).toEqual({ greeting: 'bonjour' })
    writeFileSync(file, '{ not json')
    await until(() => t!.logs.some((l) => /is invalid; keeping the previous configuration:[\s\S]*not valid JSON/.test(l.msg)), 'broken JSON reported')
    expect((await t.inject('/g/hi')).json()).toEqual({ greeting: 'bonjour' })
  })
})
