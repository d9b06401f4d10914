import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// Every line a request causes carries its id, whoever writes it: a command, a filter, the error
// handler, or the host when a streamed body fails after its headers went out.
const EXT = `import { Extension } from 'resident-host'
import { Readable } from 'node:stream'
export default class Talk extends Extension {
  say(_p, req) { req.log.info({ said: 'hi' }, 'command says hi'); return { ok: true } }
  quiet(_p, req) { req.log.debug('below the level?'); return { ok: true } }
  boom() { throw new Error('kaboom') }
  early() {
    return new Readable({ read() { this.destroy(new Error('failed before a byte')) } })
  }
  broken() {
    let n = 0
    return new Readable({ read() {
      if (n++ === 0) this.push('part one\\n')
      else setTimeout(() => this.destroy(new Error('the source went away')), 10)
    } })
  }
}`

const FILTER = `import { Filter } from 'resident-host'
export default class Note extends Filter {
  onRequest(req) { if (req.url.startsWith('/talk/say')) req.log.info('filter saw it') }
}`

describe('request log lines', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    t = await startTestServer({ config: { logLevel: 'info', requestIdHeader: 'x-request-id' }, extensions: { 'talk.ts': EXT }, filters: { 'note.ts': FILTER } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  const linesOf = (id: string) => t.logs.filter((l) => l.requestId === id)

  it('a command’s and a filter’s lines carry the request id', async () => {
    const res = await t.inject({ url: '/talk/say', headers: { 'x-request-id': 'say-1' } })
    expect(res.statusCode).toBe(200)
    expect(linesOf('say-1').find((l) => l.msg === 'command says hi')).toMatchObject({ said: 'hi' })
    expect(linesOf('say-1').some((l) => l.msg === 'filter saw it')).toBe(true)
  })

  it('a line below the level is not written', async () => {
    await t.inject({ url: '/talk/quiet' })
    expect(t.logs.some((l) => l.msg === 'below the level?')).toBe(false)
  })

  it('a failed command is logged with the id the client got', async () => {
    const res = await t.inject({ url: '/talk/boom' })
    expect(res.statusCode).toBe(500)
    const { requestId } = res.json().error
    expect(linesOf(requestId).some((l) => l.level >= 50 && /RES_ERR_COMMAND_FAILED/.test(l.msg))).toBe(true)
  })

  it('a streamed body that fails after its headers is logged with the request id', async () => {
    await new Promise<void>((resolve, reject) => {
      http.get(`${base}/talk/broken`, { headers: { 'x-request-id': 'broken-1' } }, (res) => {
        res.on('data', () => {})
        res.on('error', () => resolve())
        res.on('end', () => resolve())
      }).on('error', () => resolve()).on('close', () => resolve())
      void reject
    })
    const failed = () => linesOf('broken-1').find((l) => /the source went away/.test(JSON.stringify(l)))
    await expect.poll(failed, { timeout: 2000 }).toBeTruthy()
    expect(failed()!.level).toBeGreaterThanOrEqual(40)
  })

  it('a stream that fails before its headers is answered 500 and logged once, by the error handler', async () => {
    const res = await t.inject({ url: '/talk/early', headers: { 'x-request-id': 'early-1' } })
    expect(res.statusCode).toBe(500)
    expect(res.json().error).toMatchObject({ code: 'RES_ERR_COMMAND_FAILED', requestId: 'early-1' })
    await new Promise((r) => setTimeout(r, 50))
    const errors = linesOf('early-1').filter((l) => l.level >= 50)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.msg).toMatch(/RES_ERR_COMMAND_FAILED/)
  })
})
