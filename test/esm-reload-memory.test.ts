import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { esmProject } from './helpers/esm-project.ts'
import { gc, startTestServer, type TestServer } from './helpers/server.ts'
import { until } from './helpers/watch.ts'

// The extension of esm-extensions.test.ts (static and dynamic imports of builtins, CommonJS and
// ESM-only packages, its own files and JSON, top-level await, import.meta), reloaded 1000 times:
// packages load once through Node and every generation's own code is collected.
describe('1000 reloads of an extension using every ES module feature', () => {
  let t: TestServer
  let project: string
  afterAll(async () => { await t?.close(); rmSync(project, { recursive: true, force: true }) })

  it('keep the heap flat, and every old generation is collected', async () => {
    const { dir, files } = esmProject()
    project = dir
    t = await startTestServer({ config: { logLevel: 'warn', extensionsDir: path.join(dir, 'extensions'), filtersDir: path.join(dir, 'filters') } })
    const entry = path.join(dir, 'extensions/all/index.ts')
    const ballast = (i: number) => `\nconst ballast = new Array(32 * 1024).fill(${i})\nexport const generation = () => ballast.length + ${i}\n`
    const collected = new Set<number>()
    const registry = new FinalizationRegistry<number>((id) => collected.add(id))
    const reload = async (i: number) => {
      writeFileSync(entry, files['extensions/all/index.ts'] + ballast(i))
      const r = await t.inject({ method: 'POST', headers: { 'x-resident-admin': '1' }, url: '/_resident/extensions/all/reload' })
      expect(r.statusCode, r.body).toBe(200)
      const gen = t.server.registry.slots.get('all')!.current!
      registry.register(gen.module.sentinel!, gen.id)
      const answer = await t.inject('/all/everything')
      expect(answer.statusCode, answer.body).toBe(200)
    }
    for (let i = 1; i <= 50; i++) await reload(i)
    const settle = async () => { for (let k = 0; k < 5; k++) { gc(); await new Promise((r) => setTimeout(r, 20)) } }
    await settle()
    const before = process.memoryUsage().heapUsed
    for (let i = 51; i <= 1050; i++) await reload(i)
    await settle()
    const growthMiB = (process.memoryUsage().heapUsed - before) / 1048576
    console.log(`heap growth over 1000 reloads of the ES module extension: ${growthMiB.toFixed(2)} MiB (each generation holds 256 KiB)`)
    // 1000 retained generations would be 250 MiB; what remains is code V8 ages out lazily (a heap
    // snapshot's GC frees it), and every generation is proved collected below.
    expect(growthMiB).toBeLessThan(16)
    const current = t.server.registry.slots.get('all')!.current!.id
    await until(() => { gc(); return collected.size >= current - 2 }, `generations collected (${collected.size} of ${current - 1})`, 30_000)
  }, 240_000)
})
