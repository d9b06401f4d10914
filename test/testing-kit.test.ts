import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createExtension, createTestHost } from '../src/testing/index.ts'
import Hello from './fixtures/kit/extensions/hello.ts'

const fixtures = path.resolve(import.meta.dirname, 'fixtures/kit')

describe('resident-host/testing: createTestHost', () => {
  it('runs requests through the real filters, dispatcher and parse maps, without a port', async () => {
    const host = await createTestHost({
      cwd: fixtures,
      extensions: { hello: 'extensions/hello.ts' },
      filters: { tag: 'filters/tag.ts' },
      config: { extensions: { hello: { config: { greeting: 'hey' } } }, filters: { modules: { tag: { config: { tag: 'kit' } } } } },
    })
    try {
      const ok = await host.inject('/hello/greet?name=ann&times=2')
      expect(ok.statusCode).toBe(200)
      expect(ok.json()).toEqual({ hello: 'ann ann', greeting: 'hey' })
      expect(ok.headers['x-tag']).toBe('kit')
      // The parse map, as served: a missing parameter, a bad integer, a method the command refuses.
      const missing = await host.inject('/hello/greet')
      expect(missing.statusCode).toBe(400)
      expect(missing.json<{ error: { code: string; requestId: string } }>().error).toMatchObject({ code: 'RES_ERR_BAD_PARAM' })
      expect((await host.inject('/hello/greet?name=a&times=x')).statusCode).toBe(400)
      expect((await host.inject('/hello/echo')).statusCode).toBe(405)
      const posted = await host.inject({ url: '/hello/echo', body: { a: [1, 2] } })
      expect(posted.json()).toEqual({ got: { a: [1, 2] } })
      expect((await host.inject('/nope/x')).statusCode).toBe(404)
      expect(host.logs.some((l) => l.msg === 'hello ready')).toBe(true)
    } finally {
      await host.close()
    }
  })

  it('takes folders as well, and reports a bad config as the server would', async () => {
    const host = await createTestHost({ cwd: fixtures, extensions: 'extensions', filters: 'filters' })
    try {
      expect((await host.inject('/hello/greet?name=x')).headers['x-tag']).toBe('none')
    } finally {
      await host.close()
    }
    await expect(createTestHost({ config: { requestTimeout: 'soon' } })).rejects.toThrow(/requestTimeout/)
  })
})

describe('resident-host/testing: createExtension', () => {
  it('constructs one extension with a real handle: config, log, timers cleared on close, dispose run', async () => {
    const t = await createExtension(Hello, { config: { greeting: 'hi' } })
    expect(t.extension.greet({ name: 'bo', times: 1 })).toEqual({ hello: 'bo', greeting: 'hi' })
    expect(t.host.config).toEqual({ greeting: 'hi' })
    expect(t.logs.find((l) => l.msg === 'hello ready')).toMatchObject({ greeting: 'hi', extension: 'hello' })
    expect(t.activeTimers).toBe(1)
    await new Promise((r) => setTimeout(r, 40))
    expect(t.extension.ticks).toBeGreaterThan(0)
    await t.close()
    expect(t.extension.disposed).toBe('shutdown')
    expect(t.activeTimers).toBe(0)
    const ticks = t.extension.ticks
    await new Promise((r) => setTimeout(r, 40))
    expect(t.extension.ticks).toBe(ticks)
    expect(() => t.host.setTimeout(() => {}, 1)).toThrow(/unloaded/)
  })
})

describe('resident-host/testing under node:test', () => {
  it('passes a node:test file that imports the kit by the package name', () => {
    const r = spawnSync(process.execPath, ['--test', path.join(fixtures, 'kit.node-test.mjs')], { encoding: 'utf8', timeout: 60_000 })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/# pass 1/)
  })
})
