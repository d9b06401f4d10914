import { MessageChannel } from 'node:worker_threads'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpError } from '../../src/sdk/http-error.ts'
import { ResidentError } from '../../src/errors.ts'
import { InProcessExecutor } from '../../src/modes/inprocess.ts'
import type { Executor, LoadSpec, LoadedModule } from '../../src/modes/executor.ts'
import type { Invocation } from '../../src/modes/invocation.ts'
import type { Outcome } from '../../src/modes/outcome.ts'
import { commandOutcome, errorRecordOf } from '../../src/modes/results.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

/** Sends `value` through a real MessagePort and resolves with what arrives on the other side. */
function throughPort<T>(value: T): Promise<T> {
  const { port1, port2 } = new MessageChannel()
  return new Promise<T>((resolve, reject) => {
    port2.once('message', (v: T) => { port1.close(); resolve(v) })
    port2.once('messageerror', reject)
    port1.postMessage(value)
  })
}

const ECHO = `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  static commands = { post: { methods: ['POST'] } }
  get(params) { return params }
  post(params) { return params }
}`

const USER = `import { Filter } from 'resident-host'
export default class U extends Filter { onAuthenticate(req) { req.user = { name: 'ann', at: new Date(0), nested: { list: [1, 2] } } } }`

describe('the executor contract is plain data', () => {
  let t: TestServer
  const seen: Invocation[] = []
  beforeAll(async () => {
    // An in-process executor whose generations record every invocation they get.
    const inner = new InProcessExecutor()
    const recording: Executor = {
      mode: 'inprocess',
      async load(spec: LoadSpec): Promise<LoadedModule> {
        const m = await inner.load(spec)
        return Object.assign(Object.create(m) as LoadedModule, { invoke: (inv: Invocation) => { seen.push(inv); return m.invoke(inv) } })
      },
      close: () => inner.close(),
    }
    t = await startTestServer({ extensions: { 'echo.ts': ECHO }, filters: { 'u.ts': USER }, executors: { inprocess: recording } })
  })
  afterAll(() => t.close())

  it('an invocation survives structuredClone and a MessagePort unchanged', async () => {
    const r = await t.inject({ method: 'POST', url: '/echo/post?x=1&x=2', payload: { a: 'b' }, headers: { 'x-h': 'v' } })
    expect(r.json()).toEqual({ x: ['1', '2'], a: 'b' })
    const inv = seen.at(-1)!
    expect(inv).toMatchObject({ extension: 'echo', command: 'post', method: 'POST', path: '/echo/post', params: { x: ['1', '2'], a: 'b' },
      body: { a: 'b' }, contentType: 'application/json', clientAddress: '127.0.0.1', user: { name: 'ann', at: '1970-01-01T00:00:00.000Z', nested: { list: [1, 2] } } })
    expect(inv.deadline).toBeGreaterThan(Date.now())
    // Own data properties only: nothing a clone would drop or call.
    for (const key of Object.keys(inv) as Array<keyof Invocation>) {
      const d = Object.getOwnPropertyDescriptor(inv, key)!
      expect(d.get, key).toBeUndefined()
      expect(typeof d.value, key).not.toBe('function')
    }
    const plain = { ...inv, rawBody: new Uint8Array(inv.rawBody) }
    expect(structuredClone(plain)).toEqual(plain)
    const arrived = await throughPort(plain)
    expect(arrived).toEqual(plain)
    expect(Buffer.from(arrived.rawBody).toString()).toBe('{"a":"b"}')
  })

  it('an HttpError keeps its status, code, data and headers as an error record through a MessagePort', async () => {
    const record = errorRecordOf(new HttpError(429, 'slow down', { code: 'TOO_FAST', data: { retry: 2 }, headers: { 'retry-after': '2' } }), false)
    const arrived = await throughPort<Outcome>({ kind: 'error', error: record })
    expect(arrived).toEqual({ kind: 'error', error: { status: 429, code: 'TOO_FAST', message: 'slow down', data: { retry: 2 }, headers: { 'retry-after': '2' } } })
    // What the contract replaces: the Error itself arrives without its status.
    const raw = await throughPort(new HttpError(429, 'slow down') as unknown)
    expect((raw as { status?: number }).status).toBeUndefined()
  })

  it('a ResidentError and an unexpected throw become records too (the throw’s message only in development)', async () => {
    expect(await throughPort(errorRecordOf(new ResidentError('RES_ERR_TIMEOUT'), false))).toMatchObject({ status: 504, code: 'RES_ERR_TIMEOUT' })
    const quiet = errorRecordOf(new TypeError('secret'), false)
    expect(quiet).toMatchObject({ status: 500, code: 'RES_ERR_COMMAND_FAILED', message: 'The command failed' })
    expect(quiet.stack).toMatch(/secret/)
    expect(errorRecordOf(new TypeError('secret'), true).message).toBe('secret')
    expect(errorRecordOf('a string', false).stack).toBe('thrown: a string')
  })

  // What a sync result becomes needs nothing of the request; the producer's signature wants one.
  const REQ = { id: 'r1', url: '/x/y', headers: {}, log: pino({ level: 'silent' }) }
  const outcome = (v: unknown) => commandOutcome(v, REQ, false) as Outcome

  it('whole-body outcomes clone as they are', async () => {
    for (const result of [{ a: 1 }, [1], 'text', 42, null, new Uint8Array([1, 2]), undefined]) {
      const o = outcome(result)
      expect(o.kind).toBe('body')
      expect(await throughPort(o)).toEqual(o)
    }
    expect(outcome(() => 1)).toMatchObject({ kind: 'error', error: { code: 'RES_ERR_BAD_RESULT' } })
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(outcome(circular)).toMatchObject({ kind: 'error', error: { code: 'RES_ERR_BAD_RESULT' } })
  })
})
