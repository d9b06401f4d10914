import net from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normalisePath } from '../src/loader/url-path.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const MARKDOWN = `import { Extension } from 'resident-host'
export default class Markdown extends Extension { render() { return 'rendered' } }`

const DENY = `import { Filter, HttpError } from 'resident-host'
export default class Deny extends Filter {
  static paths = ['/markdown/**']
  onAuthenticate() { throw new HttpError(403, 'markdown is closed', { code: 'CLOSED' }) }
}`

function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from('GET '), Buffer.from(target, 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')])))
    let data = ''
    s.on('data', (d) => { data += d })
    s.on('end', () => resolve(data))
    s.on('error', reject)
  })
}

describe('filter path rules and the router read a path the same way', () => {
  let t: TestServer
  let base: string
  beforeAll(async () => {
    t = await startTestServer({ extensions: { 'markdown.ts': MARKDOWN }, filters: { 'deny.ts': DENY } })
    base = await t.listen()
  })
  afterAll(() => t.close())

  it.each([
    '/markdown/render', '/MARKDOWN/render', '/%6darkdown/render', '/markdown/RENDER', '/markdown/%72ender',
    '/mar%E2%84%AAdown/render', '/markdown/rend%C4%B0r', '/%E2%84%AAarkdown/', '/markdown/', '/markdown',
    '/marKdown/render', '/marſdown/render',
  ])('%s never reaches the command past the filter', async (url) => {
    const r = await fetch(base + url)
    const body = await r.json() as { error: { code: string; requestId: string } }
    expect([400, 403, 404]).toContain(r.status)
    expect(body.error.requestId).toBeTruthy()
  })

  it('a non-ASCII name is refused as such, before any case folding', async () => {
    const r = await fetch(`${base}/mar%E2%84%AAdown/render`)
    expect(r.status).toBe(400)
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/ASCII/)
    // The same name sent as raw UTF-8 bytes on the wire.
    const raw = await rawGet(Number(new URL(base).port), '/mar\u212Adown/render')
    expect(raw).toMatch(/^HTTP\/1\.1 4\d\d/)
    expect(raw).not.toContain('rendered')
  })

  it('normalises like the router: decoded, ASCII names lower-cased, null where the router refuses', () => {
    expect(normalisePath('/%4Darkdown/RENDER')).toBe('/markdown/render')
    expect(normalisePath('/mar%E2%84%AAdown/render')).toBeNull()
    expect(normalisePath('/a/%zz')).toBeNull()
    expect(normalisePath('/a/b/C%20d')).toBe('/a/b/C d')
    expect(normalisePath('/Hello/GREET/X/Y')).toBe('/hello/greet/X/Y')
    expect(normalisePath('/hello/greet')).toBe('/hello/greet')
  })

  it('reads a plain path (no %, ASCII) exactly as the full reading does', () => {
    // The full reading, segment by segment; normalisePath skips it for plain paths.
    const full = (path: string): string | null => {
      const segments = path.split('/')
      for (let i = 1; i < segments.length; i++) {
        let d: string
        try { d = decodeURIComponent(segments[i]!) } catch { return null }
        if (i <= 2 && /[^\x00-\x7f]/.test(d)) return null
        segments[i] = i <= 2 ? d.toLowerCase() : d
      }
      return segments.join('/')
    }
    const path = fc.array(fc.constantFrom('/', 'a', 'Z', 'q', '.', '-', '%41', '%zz', '\u212A', 'é', '?'), { maxLength: 14 }).map((p) => `/${p.join('')}`)
    fc.assert(fc.property(path, (p) => { expect(normalisePath(p)).toBe(full(p)) }), { seed: 11, numRuns: 5000 })
  })
})
