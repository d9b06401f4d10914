import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

const EXT = `import { Extension } from 'resident-host'
const g = globalThis
let open
const wait = new Promise((r) => { open = r })
g.__gate = { open, wait }
g.__aborted = []
export default class Live extends Extension {
  async *gated() {
    yield 'first\\n'
    await g.__gate.wait          // the test opens the gate only after it has read 'first'
    yield 'second\\n'
  }
  async *forever(_p, req) {
    req.signal.addEventListener('abort', () => g.__aborted.push('forever'))
    while (!req.signal.aborted) {
      yield 'tick\\n'
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  async slow(_p, req) {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 10_000)
      req.signal.addEventListener('abort', () => { clearTimeout(t); g.__aborted.push('slow:' + req.signal.reason?.code); resolve() })
    })
    return 'late'
  }
}`

describe('streaming, aborts and deadlines', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    // A stream deadline of its own: the command deadline here is short, and the gated stream waits on the test.
    t = await startTestServer({ config: { requestTimeout: 300, limits: { streamTimeout: '30s' } }, extensions: { 'live.ts': EXT } })
    base = await t.listen()
  })
  afterAll(() => t.close())
  const g = globalThis as unknown as { __gate: { open: () => void }; __aborted: string[] }

  it('sends each chunk as it is produced', async () => {
    const res = await fetch(`${base}/live/gated`)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toBe('first\n')
    g.__gate.open()
    let rest = ''
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value)
    expect(rest).toBe('second\n')
  })

  it('aborts the command’s signal when the client goes away, and releases its lease', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}/live/forever`, (res) => {
        res.once('data', () => { req.destroy(); resolve() })
      })
      req.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e) })
    })
    await expect.poll(() => g.__aborted.includes('forever'), { timeout: 5000 }).toBe(true)
    await expect.poll(() => t.server.registry.slots.get('live')!.inFlight, { timeout: 5000 }).toBe(0)
  })

  it('answers 504 past requestTimeout and aborts the signal with the reason', async () => {
    const r = await t.inject('/live/slow')
    expect(r.statusCode).toBe(504)
    expect(r.json().error.code).toBe('RES_ERR_TIMEOUT')
    await expect.poll(() => g.__aborted.includes('slow:RES_ERR_TIMEOUT'), { timeout: 5000 }).toBe(true)
  })
})

describe('graceful stop after a client abandoned a stream', () => {
  it('does not wait for drainTimeout on connections with no response in progress', async () => {
    const t = await startTestServer({ config: { drainTimeout: 60_000 }, extensions: { 'live.ts': EXT } })
    const base = await t.listen()
    const ac = new AbortController()
    const res = await fetch(`${base}/live/forever`, { signal: ac.signal })
    await res.body!.getReader().read()
    ac.abort()
    await expect.poll(() => t.server.registry.slots.get('live')!.inFlight, { timeout: 5000 }).toBe(0)
    let stopped = false
    const closing = t.close().then(() => { stopped = true })
    // Far below the 60 s drainTimeout: the stop must not be held by the abandoned connection.
    await expect.poll(() => stopped, { timeout: 10_000 }).toBe(true)
    await closing
  })
})
