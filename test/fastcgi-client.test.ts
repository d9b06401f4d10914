import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RecordReader, Type, encodeEndRequest, encodeRecord, ProtocolStatus } from '../src/modes/fastcgi/records.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { requirePeers } from './helpers/peers.ts'
import { startPhpFpm, type PhpFpm } from './helpers/php-fpm.ts'
import { waitFor } from './helpers/poll.ts'

const peers = requirePeers('php-fpm')

const GATE = `import { Filter, HttpError, type FilterRequest, type FilterResponse } from 'resident-host'
export default class Gate extends Filter {
  static override paths = ['/php/**']
  override onAuthenticate(req: FilterRequest) {
    if (req.url.startsWith('/php/private/') && req.headers['x-key'] !== 'open') throw new HttpError(403, 'no key', { code: 'NO_KEY' })
    req.user = { name: 'tester' }
  }
  override onSendResponse(_req: FilterRequest, res: FilterResponse) { res.setHeader('x-filtered', 'yes') }
}
`

describe.skipIf(!peers)('a PHP app behind real php-fpm, served through Resident with its filters in front', () => {
  let dir: string
  let fpm: PhpFpm
  let fpm2: PhpFpm
  let t: TestServer
  let base: string
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-php-'))
    const root = path.join(dir, 'php')
    mkdirSync(path.join(root, 'private'), { recursive: true })
    writeFileSync(path.join(root, 'hello.php'), `<?php header('Content-Type: text/plain'); echo 'hello ', $_GET['name'] ?? 'world';`)
    writeFileSync(path.join(root, 'index.php'), `<?php echo 'index';`)
    writeFileSync(path.join(root, 'server.php'), `<?php header('Content-Type: application/json'); echo json_encode(['SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'], 'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null, 'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'], 'REMOTE_ADDR' => $_SERVER['REMOTE_ADDR'], 'X' => $_SERVER['HTTP_X_TEST'] ?? null, 'PROXY' => $_SERVER['HTTP_PROXY'] ?? null, 'QUERY_STRING' => $_SERVER['QUERY_STRING']]);`)
    writeFileSync(path.join(root, 'post.php'), `<?php header('Content-Type: application/json'); $raw = file_get_contents('php://input'); echo json_encode(['post' => $_POST, 'length' => strlen($raw), 'md5' => md5($raw), 'declared' => $_SERVER['CONTENT_LENGTH'] ?? null]);`)
    writeFileSync(path.join(root, 'big.php'), `<?php header('Content-Type: text/plain'); for ($i = 0; $i < 3000; $i++) { echo str_pad((string)$i, 999, '.'), "\\n"; if ($i % 100 == 0) flush(); }`)
    writeFileSync(path.join(root, 'err.php'), `<?php error_log('the teapot is empty'); http_response_code(418); echo 'teapot';`)
    writeFileSync(path.join(root, 'redirect.php'), `<?php header('Location: /php/hello.php'); header('Set-Cookie: a=1'); header('Set-Cookie: b=2', false);`)
    writeFileSync(path.join(root, 'private', 'x.php'), `<?php echo 'secret';`)
    fpm = await startPhpFpm(peers!['php-fpm'], dir)
    // A second pool: the first one's workers are pinned by the kept connections of /php/.
    mkdirSync(path.join(dir, 'fpm2'))
    fpm2 = await startPhpFpm(peers!['php-fpm'], path.join(dir, 'fpm2'))
    t = await startTestServer({
      filters: { 'gate.ts': GATE },
      // pm.max_children is 2: kept connections pin php-fpm workers, so the pool must not exceed it.
      config: { fastcgi: { apps: { '/php/': { address: `unix:${fpm.socket}`, root, maxConns: 2 }, '/php-once/': { address: `unix:${fpm2.socket}`, root } } } },
    })
    base = await t.listen()
  })
  afterAll(async () => { await t?.close(); await fpm?.stop(); await fpm2?.stop(); rmSync(dir, { recursive: true, force: true }) })

  it('GET: a script with a query, and the folder index', async () => {
    const r = await fetch(`${base}/php/hello.php?name=fpm`)
    expect(r.status).toBe(200)
    expect(await r.text()).toBe('hello fpm')
    expect(r.headers.get('x-filtered')).toBe('yes')
    expect(await (await fetch(`${base}/php/`)).text()).toBe('index')
  })

  it('passes the CGI variables php expects: SCRIPT_NAME, PATH_INFO, SCRIPT_FILENAME; never HTTP_PROXY', async () => {
    const r = await fetch(`${base}/php/server.php/extra/bit?q=1`, { headers: { 'x-test': 'yes', proxy: 'http://evil' } })
    const s = await r.json()
    expect(s).toMatchObject({ SCRIPT_NAME: '/php/server.php', PATH_INFO: '/extra/bit', REMOTE_ADDR: '127.0.0.1', X: 'yes', PROXY: null, QUERY_STRING: 'q=1' })
    expect(s.SCRIPT_FILENAME).toBe(path.join(dir, 'php', 'server.php'))
  })

  it('POST with a form body and with a large streamed body', async () => {
    const form = await fetch(`${base}/php/post.php`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=two' })
    expect(await form.json()).toMatchObject({ post: { a: '1', b: 'two' }, length: 9, declared: '9' })
    const big = Buffer.alloc(300_000, 'z')
    const r = await fetch(`${base}/php/post.php`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
    const { createHash } = await import('node:crypto')
    expect(await r.json()).toMatchObject({ length: 300_000, md5: createHash('md5').update(big).digest('hex') })
  })

  it('a large output streams through whole (3 MB)', async () => {
    const text = await (await fetch(`${base}/php/big.php`)).text()
    const lines = text.split('\n')
    expect(lines.length).toBe(3001)
    expect(lines[2999]!.startsWith('2999.')).toBe(true)
  })

  it('PHP\'s stderr goes to the log; its status comes through', async () => {
    const r = await fetch(`${base}/php/err.php`)
    expect(r.status).toBe(418)
    expect(await r.text()).toBe('teapot')
    await waitFor(() => t.logs.some((l) => /FastCGI stderr: .*the teapot is empty/.test(l.msg)), 'stderr in the log')
  })

  it('Location without Status is a 302; repeated Set-Cookie headers stay apart', async () => {
    const r = await fetch(`${base}/php/redirect.php`, { redirect: 'manual' })
    expect(r.status).toBe(302)
    expect(r.headers.get('location')).toBe('/php/hello.php')
    expect(r.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
  })

  it('the filters decide first: onAuthenticate denies without reaching php', async () => {
    const denied = await fetch(`${base}/php/private/x.php`)
    expect(denied.status).toBe(403)
    expect((await denied.json()).error.code).toBe('NO_KEY')
    const ok = await fetch(`${base}/php/private/x.php`, { headers: { 'x-key': 'open' } })
    expect(await ok.text()).toBe('secret')
  })

  it('refuses paths that try to leave the root, and paths with no script', async () => {
    expect((await fetch(`${base}/php/..%2f..%2fetc/x.php`)).status).toBe(400)
    expect((await fetch(`${base}/php/a%00.php`)).status).toBe(400)
    expect((await fetch(`${base}/php/a%2fb.php`)).status).toBe(400)
    expect((await fetch(`${base}/php/noscript`)).status).toBe(404)
  })

  it('keeps connections alive: many concurrent requests share a pool no larger than maxConns', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${base}/php/hello.php?name=${i}`).then(async (r) => expect(await r.text()).toBe(`hello ${i}`))))
    const status = await (await fetch(`${base}/_resident/status`)).json() as { fastcgi: Record<string, Array<{ limit: number; idle: number; active: number }>> }
    expect(status.fastcgi['/php/']![0]).toMatchObject({ limit: 2, active: 0 })
    expect(status.fastcgi['/php/']![0]!.idle).toBeLessThanOrEqual(2)
  })

  it('without maxConns (php-fpm does not answer FCGI_MAX_CONNS) each connection carries one request', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${base}/php-once/hello.php?name=${i}`).then(async (r) => expect(await r.text()).toBe(`hello ${i}`))))
    const status = await (await fetch(`${base}/_resident/status`)).json() as { fastcgi: Record<string, Array<{ idle: number }>> }
    expect(status.fastcgi['/php-once/']![0]!.idle).toBe(0)
  })
})

/** A scripted backend: each connection gets what `answer` writes. */
async function fakeBackend(dir: string, name: string, answer: (socket: net.Socket, firstRecordType: number) => void): Promise<{ address: string; server: net.Server; connections: () => number }> {
  const p = path.join(dir, name)
  let connections = 0
  const server = net.createServer((s) => {
    connections++
    const reader = new RecordReader()
    s.on('data', (d) => {
      for (const r of reader.push(d)) if (r.type === Type.STDIN && r.content.length === 0) answer(s, r.type)
    })
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(p, r))
  return { address: `unix:${p}`, server, connections: () => connections }
}

describe('the FastCGI client against scripted backends', () => {
  let dir: string
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-client-')) })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  async function serverFor(addresses: string[]): Promise<{ t: TestServer; base: string }> {
    const t = await startTestServer({ config: { fastcgi: { apps: { '/app/': { address: addresses, root: '/srv', scriptExtensions: ['.cgi'], maxConns: 4, downTime: '1m' } } } } })
    return { t, base: await t.listen() }
  }

  it('OVERLOADED answers 503 with Retry-After', async () => {
    const b = await fakeBackend(dir, 'over.sock', (s) => s.end(encodeEndRequest(1, 0, ProtocolStatus.OVERLOADED)))
    const { t, base } = await serverFor([b.address])
    try {
      const r = await fetch(`${base}/app/x.cgi`)
      expect(r.status).toBe(503)
      expect(r.headers.get('retry-after')).toBe('1')
      expect((await r.json()).error.code).toBe('RES_ERR_FASTCGI_OVERLOADED')
    } finally { await t.close(); b.server.close() }
  })

  it('a connection closed without END_REQUEST answers 502', async () => {
    const b = await fakeBackend(dir, 'crash.sock', (s) => { s.write(encodeRecord(Type.STDOUT, 1, Buffer.from('Status: 200 OK\r\nContent-Type: text/plain\r\n'))); s.destroy() })
    const { t, base } = await serverFor([b.address])
    try {
      const r = await fetch(`${base}/app/x.cgi`)
      expect(r.status).toBe(502)
      expect((await r.json()).error.code).toBe('RES_ERR_FASTCGI_CLOSED')
    } finally { await t.close(); b.server.close() }
  })

  it('a bad header block answers 502', async () => {
    const b = await fakeBackend(dir, 'bad.sock', (s) => s.end(Buffer.concat([encodeRecord(Type.STDOUT, 1, Buffer.from('Status: nope\r\n\r\n')), encodeRecord(Type.STDOUT, 1), encodeEndRequest(1, 0, 0)])))
    const { t, base } = await serverFor([b.address])
    try {
      const r = await fetch(`${base}/app/x.cgi`)
      expect(r.status).toBe(502)
      expect((await r.json()).error.code).toBe('RES_ERR_FASTCGI_PROTOCOL')
    } finally { await t.close(); b.server.close() }
  })

  it('several backends: a refused one is marked down and the request goes to another; all refused is 502', async () => {
    const ok = await fakeBackend(dir, 'ok.sock', (s) => s.write(Buffer.concat([encodeRecord(Type.STDOUT, 1, Buffer.from('Content-Type: text/plain\n\nfine')), encodeRecord(Type.STDOUT, 1), encodeEndRequest(1, 0, 0)])))
    const dead = `unix:${path.join(dir, 'nobody-listens.sock')}`
    const { t, base } = await serverFor([dead, ok.address])
    try {
      for (let i = 0; i < 6; i++) expect(await (await fetch(`${base}/app/x.cgi`)).text()).toBe('fine')
      const status = await (await fetch(`${base}/_resident/status`)).json() as { fastcgi?: Record<string, Array<{ address: string; healthy: boolean }>> }
      expect(status.fastcgi?.['/app/']?.find((b) => b.address === dead)?.healthy).toBe(false)
      // Kept alive: six requests, one connection.
      expect(ok.connections()).toBe(1)
    } finally { await t.close(); ok.server.close() }
    const { t: t2, base: base2 } = await serverFor([dead])
    try {
      const r = await fetch(`${base2}/app/x.cgi`)
      expect(r.status).toBe(502)
      expect((await r.json()).error.code).toBe('RES_ERR_FASTCGI_UNREACHABLE')
    } finally { await t2.close() }
  })
})
