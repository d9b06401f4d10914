// Worker mode, at the executor: a request body crosses to the worker by transfer, not by copy (the
// host's buffer is detached), while a small body that lives in Node's shared pool is copied so the
// worker sees its own bytes and nothing of other requests'. Real worker threads, no server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveConfig } from '../../src/config/load.ts'
import type { LoadedModule } from '../../src/modes/executor.ts'
import type { Invocation } from '../../src/modes/invocation.ts'
import type { Outcome } from '../../src/modes/outcome.ts'
import { WorkerExecutor } from '../../src/modes/worker/executor.ts'

const BYTES = `import { Extension } from 'resident-host'
export default class Bytes extends Extension {
  // What arrived: the body's length, the size of the memory behind it, and a checksum.
  seen(_p, req) {
    const b = req.rawBody
    let sum = 0
    for (const x of b) sum = (sum + x) % 65521
    return { length: b.length, backing: b.buffer.byteLength, sum, same: req.body === req.rawBody }
  }
}
`

function invocation(rawBody: Uint8Array): Invocation {
  return {
    id: `t-${rawBody.byteLength}`, extension: 'bytes', command: 'seen', method: 'POST', url: '/bytes/seen', path: '/bytes/seen',
    query: {}, headers: { 'content-type': 'application/octet-stream' }, params: {}, body: rawBody, rawBody,
    contentType: 'application/octet-stream', clientAddress: '127.0.0.1', user: undefined, deadline: 0,
  }
}

const json = (o: Outcome) => {
  if (o.kind !== 'body') throw new Error(`expected a body, got ${JSON.stringify(o)}`)
  return JSON.parse(typeof o.body === 'string' ? o.body : Buffer.from(o.body!).toString()) as { length: number; backing: number; sum: number; same: boolean }
}

describe('worker mode: request bodies cross by transfer', () => {
  let dir: string
  let executor: WorkerExecutor
  let mod: LoadedModule
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-transfer-'))
    writeFileSync(path.join(dir, 'bytes.ts'), BYTES)
    const log = pino({ level: 'silent' })
    executor = new WorkerExecutor({ config: resolveConfig({ extensionsDir: dir, mode: 'worker' }, { cwd: dir }), log })
    mod = await executor.load({ name: 'bytes', entry: path.join(dir, 'bytes.ts'), generation: 1, config: {}, log, development: false })
  }, 30_000)
  afterAll(async () => {
    await mod?.dispose('shutdown')
    await executor?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a body that owns its memory is transferred: the host’s copy is detached, the worker gets every byte', async () => {
    const body = new Uint8Array(1024 * 1024)
    for (let i = 0; i < body.length; i++) body[i] = i % 251
    let sum = 0
    for (const x of body) sum = (sum + x) % 65521
    const pending = mod.invoke(invocation(body))
    const seen = json(await pending)
    expect(seen).toEqual({ length: 1024 * 1024, backing: 1024 * 1024, sum, same: true })
    expect(body.byteLength).toBe(0) // detached: moved, not copied
  })

  it('a small Buffer from Node’s shared pool is copied: the worker sees its bytes only, the host keeps its own', async () => {
    const small = Buffer.from('hello')
    expect(small.buffer.byteLength).toBeGreaterThan(small.length) // a slice of the pool
    const seen = json(await mod.invoke(invocation(small)))
    expect(seen).toMatchObject({ length: 5, backing: 5 })
    expect(small.toString()).toBe('hello')
  })
})

describe('worker mode: a call that arrives while the pool is being disposed', () => {
  it('is answered 503 RES_ERR_UNAVAILABLE (the extension is being unloaded), not a crash backoff', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-disposing-'))
    writeFileSync(path.join(dir, 'bytes.ts'), BYTES)
    const log = pino({ level: 'silent' })
    const executor = new WorkerExecutor({ config: resolveConfig({ extensionsDir: dir, mode: 'worker' }, { cwd: dir }), log })
    try {
      const mod = await executor.load({ name: 'bytes', entry: path.join(dir, 'bytes.ts'), generation: 1, config: {}, log, development: false })
      await mod.dispose('admin')
      const o = await mod.invoke(invocation(new Uint8Array(4)))
      expect(o.kind).toBe('error')
      if (o.kind === 'error') expect(o.error).toMatchObject({ status: 503, code: 'RES_ERR_UNAVAILABLE' })
    } finally {
      await executor.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
