import { afterEach, describe, expect, it } from 'vitest'
import { gc, startTestServer, type TestServer } from './helpers/server.ts'
import { waitFor } from './helpers/poll.ts'

interface Retired { generation: number; reason: string; collected: boolean | null }

let t: TestServer | undefined
afterEach(async () => { await t?.close(); t = undefined })

async function verdict(t: TestServer, name: string): Promise<{ retired: Retired[]; leaksSuspected: number }> {
  return waitFor(async () => {
    gc()
    const e = (await t.inject('/_resident/status')).json().extensions.find((x: { name: string }) => x.name === name)
    return e?.retired.length > 0 && e.retired.every((r: Retired) => r.collected !== null) && e
  }, `a collection verdict for ${name}`, 20_000, 50)
}

describe('collection proof', () => {
  it('proves a clean extension was collected after unload (and after reload)', async () => {
    t = await startTestServer({
      extensions: {
        'clean.ts': `import { Extension } from 'resident-host'
const ballast = new Array(200_000).fill(0).map((_, i) => ({ i }))
export default class Clean extends Extension {
  init() { this.host.setInterval(() => ballast.length, 1000) }
  size() { return ballast.length }
}`,
      },
      config: { unload: { collectionGrace: '300ms' } },
    })
    expect((await t.inject('/clean/size')).body).toBe('200000')
    expect((await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/clean/reload' })).statusCode).toBe(200)
    expect((await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/clean/unload' })).json()).toEqual({ name: 'clean', unloaded: true })
    const e = await verdict(t, 'clean')
    expect(e.retired.map((r) => [r.generation, r.reason, r.collected])).toEqual([[1, 'reload', true], [2, 'admin', true]])
    expect(e.leaksSuspected).toBe(0)
    expect(t.logs.some((l) => /leak suspected/.test(l.msg))).toBe(false)
  })

  it('reports an extension leaking through a global listener as retained', async () => {
    t = await startTestServer({
      extensions: {
        'leaky.ts': `import { Extension } from 'resident-host'
const ballast = new Array(100_000).fill(0).map((_, i) => ({ i }))
export default class Leaky extends Extension {
  init() { process.on('SIGUSR2', () => ballast.length) }
  ping() { return 'pong' }
}`,
      },
      config: { unload: { collectionGrace: '300ms' } },
    })
    try {
      expect((await t.inject('/leaky/ping')).body).toBe('pong')
      await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/leaky/unload' })
      const e = await verdict(t, 'leaky')
      expect(e.retired).toEqual([expect.objectContaining({ generation: 1, reason: 'admin', collected: false })])
      expect(e.leaksSuspected).toBe(1)
      const warning = t.logs.find((l) => /leak suspected/.test(l.msg))
      expect(warning?.msg).toMatch(/leaky generation 1 retained after unload — leak suspected.*listeners added to process/)
    } finally {
      process.removeAllListeners('SIGUSR2')
    }
  })
})

describe('collection watcher', () => {
  it('keeps apart two retirements with the same name and generation (an extension deleted and added again)', async () => {
    const { CollectionWatcher } = await import('../src/residency/collection.ts')
    const logs: string[] = []
    const log = { info: (_o: unknown, m: string) => logs.push(m), warn: (_o: unknown, m: string) => logs.push(m) } as never
    const w = new CollectionWatcher({ grace: 100, log })
    const first = { generation: 1, reason: 'admin' as const, at: new Date(), collected: null as boolean | null }
    const second = { generation: 1, reason: 'admin' as const, at: new Date(), collected: null as boolean | null }
    const kept = { sentinel: class Kept {} }
    ;(() => { w.watch('again', class Freed {}, first) })()
    w.watch('again', kept.sentinel, second)
    await waitFor(() => { gc(); return first.collected !== null && second.collected !== null }, 'both verdicts', 10_000, 20)
    expect([first.collected, second.collected]).toEqual([true, false])
    expect(w.totals).toEqual({ watched: 2, collected: 1, retained: 1 })
    expect(kept.sentinel).toBeTypeOf('function')
    w.close()
  })
})
