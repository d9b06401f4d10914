import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodePairs, encodePairs, encodePair } from '../src/modes/fastcgi/pairs.ts'
import { encodeRecord, ProtocolStatus, Type } from '../src/modes/fastcgi/records.ts'
import { BIN } from './helpers/cli.ts'
import { startWorker, type Worker } from './helpers/fcgi.ts'
import { getParams, RawFcgi } from './helpers/fcgi-raw.ts'
import { freePort, startNginx } from './helpers/nginx.ts'
import { requirePeers } from './helpers/peers.ts'
import { expectSameAsResident } from './helpers/same-as-resident.ts'
import { waitFor } from './helpers/poll.ts'

const exec = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '..')
const peers = requirePeers('nginx', 'spawn-fcgi', 'cgi-fcgi')

describe('resident fcgi-worker: the FastCGI protocol, at the record level', () => {
  let dir: string
  let worker: Worker
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-'))
    worker = await startWorker(['--listen', `unix:${dir}/w.sock`], { cwd: ROOT })
  })
  afterAll(() => { worker?.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) })

  it('answers GET_VALUES with what it knows, and UNKNOWN_TYPE for other management records', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.send(encodeRecord(Type.GET_VALUES, 0, encodePairs([['FCGI_MAX_CONNS', ''], ['FCGI_MAX_REQS', ''], ['FCGI_MPXS_CONNS', ''], ['OTHER', '']])))
    await c.until((rs) => rs.some((r) => r.type === Type.GET_VALUES_RESULT))
    const values = Object.fromEntries(decodePairs(c.records[0]!.content))
    expect(values).toEqual({ FCGI_MAX_CONNS: expect.stringMatching(/^\d+$/), FCGI_MAX_REQS: expect.stringMatching(/^\d+$/), FCGI_MPXS_CONNS: '0' })
    c.send(encodeRecord(200, 0, Buffer.alloc(0)))
    await c.until((rs) => rs.some((r) => r.type === Type.UNKNOWN_TYPE))
    expect(c.records.find((r) => r.type === Type.UNKNOWN_TYPE)!.content[0]).toBe(200)
    c.close()
  })

  it('serves several requests on a kept connection, with params split across records', async () => {
    const c = await RawFcgi.connect(worker.address)
    for (const id of [1, 1, 7]) {
      c.begin(id)
      // Split a pair in two records, as Apache and cgi-fcgi may.
      const stream = encodePairs(getParams('GET', `/hello/greet?name=n${id}`))
      c.send(encodeRecord(Type.PARAMS, id, stream.subarray(0, 13)), encodeRecord(Type.PARAMS, id, stream.subarray(13)), encodeRecord(Type.PARAMS, id))
      c.stdin(id)
      const r = await c.response(id)
      expect(r.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE)
      expect(r.stdout).toMatch(/^Status: 200 OK\r\n/)
      expect(r.stdout.endsWith(`{"hello":"n${id}"}`)).toBe(true)
      expect(r.stdout).not.toMatch(/^connection:/im)
    }
    c.close()
  })

  it('refuses a second concurrent request id with CANT_MPX_CONN and serves the first', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.begin(1)
    c.params(1, getParams('GET', '/stream/?chunks=2&delay=200'))
    c.stdin(1)
    c.begin(2)
    const second = await c.response(2)
    expect(second.protocolStatus).toBe(ProtocolStatus.CANT_MPX_CONN)
    const first = await c.response(1)
    expect(first.stdout).toContain('chunk 2 of 2')
    c.close()
  })

  it('answers an unknown role with UNKNOWN_ROLE (FILTER is not served) and closes without KEEP_CONN', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.begin(1, 3, false)
    const r = await c.response(1)
    expect(r.protocolStatus).toBe(ProtocolStatus.UNKNOWN_ROLE)
    await c.waitClosed()
  })

  it('ABORT_REQUEST ends the request at once, and the command sees its signal', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.begin(1)
    c.params(1, getParams('GET', '/stream/?chunks=50&delay=200'))
    c.stdin(1)
    await c.until((rs) => rs.some((r) => r.type === Type.STDOUT && r.content.includes('chunk 1')))
    c.send(encodeRecord(Type.ABORT_REQUEST, 1))
    const r = await c.response(1)
    expect(r.protocolStatus).toBe(ProtocolStatus.REQUEST_COMPLETE)
    expect(r.stdout).not.toContain('chunk 50 of 50')
    // The connection stays usable.
    c.begin(1)
    c.params(1, getParams('GET', '/hello/greet'))
    c.stdin(1)
    expect((await c.response(1)).stdout).toContain('"hello":"world"')
    c.close()
  })

  it('posts a body through STDIN', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.begin(1)
    const body = JSON.stringify({ a: 40, b: 2 })
    c.params(1, getParams('POST', '/calc/add', { CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(body.length) }))
    c.stdin(1, body)
    expect((await c.response(1)).stdout).toMatch(/\{"sum":42\}$/)
    c.close()
  })

  it('closes a connection that sends garbage, and keeps serving others', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    await c.waitClosed()
    const d = await RawFcgi.connect(worker.address)
    d.begin(1); d.params(1, getParams('GET', '/hello/greet')); d.stdin(1)
    expect((await d.response(1)).stdout).toContain('world')
    d.close()
    await waitFor(() => /FastCGI protocol error: not a FastCGI 1.0 record/.test(worker.output()), 'the protocol error to be logged')
  })

  it('AUTHORIZER: the filters\' onAuthenticate decides; 200 passes the user on as Variable-REMOTE_USER', async () => {
    const c = await RawFcgi.connect(worker.address)
    c.begin(1, 2)
    c.params(1, getParams('GET', '/secret/'))
    const denied = await c.response(1)
    expect(denied.stdout).toMatch(/^Status: 401 Unauthorized\r\n/)
    expect(denied.stdout).toMatch(/^www-authenticate: Basic realm=/im)
    c.begin(1, 2)
    c.params(1, getParams('GET', '/secret/', { HTTP_AUTHORIZATION: `Basic ${Buffer.from('demo:demo').toString('base64')}` }))
    const allowed = await c.response(1)
    expect(allowed.stdout).toMatch(/^Status: 200 OK\r\n/)
    expect(allowed.stdout).toMatch(/^variable-remote_user: demo\r\n/im)
    // The command itself did not run: an authorizer answers with no body.
    expect(allowed.stdout.split('\r\n\r\n')[1]).toBe('')
    c.close()
  })
})

describe('FCGI_WEB_SERVER_ADDRS', () => {
  it('closes TCP connections from other addresses and serves listed ones', async () => {
    const port = await freePort()
    const refusing = await startWorker(['--listen', `127.0.0.1:${port}`], { cwd: ROOT, env: { FCGI_WEB_SERVER_ADDRS: '10.1.2.3' } })
    try {
      const c = await RawFcgi.connect(refusing.address)
      await c.waitClosed()
      await waitFor(() => /not in FCGI_WEB_SERVER_ADDRS/.test(refusing.output()), 'the refusal to be logged')
    } finally { refusing.child.kill('SIGKILL'); await refusing.exited }
    const port2 = await freePort()
    const allowing = await startWorker(['--listen', `127.0.0.1:${port2}`], { cwd: ROOT, env: { FCGI_WEB_SERVER_ADDRS: '10.1.2.3, 127.0.0.1' } })
    try {
      const c = await RawFcgi.connect(allowing.address)
      c.begin(1); c.params(1, getParams('GET', '/hello/greet')); c.stdin(1)
      expect((await c.response(1)).stdout).toContain('world')
      c.close()
    } finally { allowing.child.kill('SIGKILL') }
  })

  it('refuses unix-socket peers while it is set (the spec: a connection not over TCP/IP fails the check)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-addrs-'))
    const w = await startWorker(['--listen', `unix:${dir}/w.sock`], { cwd: ROOT, env: { FCGI_WEB_SERVER_ADDRS: '127.0.0.1' } })
    try {
      const c = await RawFcgi.connect(w.address)
      await c.waitClosed()
      await waitFor(() => /a unix socket refused: not in FCGI_WEB_SERVER_ADDRS/.test(w.output()), 'the refusal to be logged')
    } finally { w.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
  })
})

describe.skipIf(!peers)('fcgi-worker behind real peers', () => {
  let dir: string
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-peers-')) })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const paths = ['/hello/greet?name=nginx', '/hello/', '/calc/add?a=2&b=3', '/calc/div?a=1&b=0', '/calc/nope', '/nope/', '/hello/greet?name=' + 'x'.repeat(101), '/secret/']

  const location = (pass: string) => `
  upstream resident { server ${pass}; keepalive 8; }
  server {
    listen 127.0.0.1:{{PORT}};
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass resident;
      fastcgi_keep_conn on;
    }
  }`

  it('nginx fastcgi_pass over a unix socket serves /<extension>/<command> exactly as Resident\'s HTTP does', async () => {
    const worker = await startWorker(['--listen', `unix:${dir}/nginx.sock`], { cwd: ROOT })
    const nginx = await startNginx(peers!.nginx, mkdtempSync(path.join(dir, 'n-')), location(`unix:${dir}/nginx.sock`))
    try {
      await expectSameAsResident(nginx.url, paths)
    } finally {
      await nginx.stop()
      worker.child.kill('SIGTERM')
      expect(await worker.exited).toBe(0)
    }
  })

  it('nginx fastcgi_pass over TCP', async () => {
    const port = await freePort()
    const worker = await startWorker(['--listen', `127.0.0.1:${port}`], { cwd: ROOT })
    const nginx = await startNginx(peers!.nginx, mkdtempSync(path.join(dir, 'n-')), location(`127.0.0.1:${port}`))
    try {
      await expectSameAsResident(nginx.url, paths)
    } finally {
      await nginx.stop()
      worker.child.kill('SIGKILL')
    }
  })

  it('spawn-fcgi hands the worker its socket on fd 0, and cgi-fcgi -bind -connect makes a request', async () => {
    const sock = path.join(dir, 'spawn.sock')
    const pidFile = path.join(dir, 'spawn.pid')
    await exec(peers!['spawn-fcgi'], ['-s', sock, '-P', pidFile, '-d', ROOT, '--', process.execPath, BIN, 'fcgi-worker'])
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    try {
      const env = { ...process.env, ...getParams('GET', '/hello/greet?name=spawned') }
      const { stdout } = await waitFor(() => exec(peers!['cgi-fcgi'], ['-bind', '-connect', sock], { env, timeout: 10_000 }).catch(() => null), 'cgi-fcgi to get an answer')
      expect(stdout).toMatch(/^Status: 200 OK\r\n/)
      expect(stdout.endsWith('{"hello":"spawned"}')).toBe(true)
      const post = exec(peers!['cgi-fcgi'], ['-bind', '-connect', sock], {
        env: { ...process.env, ...getParams('POST', '/calc/add', { CONTENT_TYPE: 'application/json', CONTENT_LENGTH: '13' }) }, timeout: 10_000,
      })
      post.child.stdin!.end('{"a":7,"b":8}')
      expect((await post).stdout).toMatch(/\{"sum":15\}$/)
    } finally {
      process.kill(pid, 'SIGTERM')
      await waitFor(() => { try { process.kill(pid, 0); return false } catch { return true } }, 'the spawned worker to exit')
    }
  })
})

// Keep encodePair in use for readers: a 4-byte-length pair reaches the worker intact.
describe('long parameters', () => {
  it('a header value over 127 bytes (4-byte length) reaches the command', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-long-'))
    const worker = await startWorker(['--listen', `unix:${dir}/w.sock`], { cwd: ROOT })
    try {
      const c = await RawFcgi.connect(worker.address)
      const name = 'n'.repeat(100)
      c.begin(1)
      c.send(encodeRecord(Type.PARAMS, 1, Buffer.concat([encodePairs(getParams('GET', `/hello/greet?name=${name}`)), encodePair('HTTP_X_LONG', 'v'.repeat(300))])), encodeRecord(Type.PARAMS, 1))
      c.stdin(1)
      expect((await c.response(1)).stdout).toContain(`"hello":"${name}"`)
      c.close()
    } finally { worker.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('the executor\'s describe request', () => {
  it('answers RESIDENT_DESCRIBE (a FastCGI parameter, never a header) with the command table and the watch set', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-describe-'))
    const worker = await startWorker(['--listen', `unix:${dir}/w.sock`], { cwd: ROOT })
    try {
      const c = await RawFcgi.connect(worker.address)
      c.begin(1); c.params(1, { ...getParams('GET', '/calc/'), RESIDENT_DESCRIBE: 'calc' }); c.stdin(1)
      const r = await c.response(1)
      const body = JSON.parse(r.stdout.split('\r\n\r\n')[1]!) as { table: { commands: Record<string, { name: string }> }; inputs: string[] }
      expect(Object.keys(body.table.commands).sort()).toEqual(['add', 'div'])
      expect(body.inputs).toContain(path.join(ROOT, 'extensions', 'calc.ts'))
      // The same thing asked with a header is an ordinary request.
      c.begin(1); c.params(1, { ...getParams('GET', '/calc/add?a=1'), HTTP_RESIDENT_DESCRIBE: 'calc' }); c.stdin(1)
      expect((await c.response(1)).stdout).toMatch(/\{"sum":6\}$/)
      c.begin(1); c.params(1, { ...getParams('GET', '/x/'), RESIDENT_DESCRIBE: 'nosuch' }); c.stdin(1)
      expect((await c.response(1)).stdout).toMatch(/^Status: 404/)
      c.close()
    } finally { worker.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('SIGHUP', () => {
  it('reloads the worker\'s extensions, as resident serve does', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-fcgi-hup-'))
    const { mkdirSync, writeFileSync } = await import('node:fs')
    mkdirSync(path.join(dir, 'extensions'))
    mkdirSync(path.join(dir, 'filters'))
    const write = (v: string) => writeFileSync(path.join(dir, 'extensions', 'ver.ts'), `import { Extension } from 'resident-host'
export default class Ver extends Extension { which() { return '${v}' } }`)
    write('one')
    const worker = await startWorker(['--listen', `unix:${dir}/w.sock`, '--extensions', path.join(dir, 'extensions'), '--filters', path.join(dir, 'filters')], { cwd: dir })
    const ask = async () => {
      const c = await RawFcgi.connect(worker.address)
      c.begin(1); c.params(1, getParams('GET', '/ver/which')); c.stdin(1)
      const r = await c.response(1)
      c.close()
      return r.stdout.split('\r\n\r\n')[1]
    }
    try {
      expect(await ask()).toBe('one')
      write('two')
      worker.child.kill('SIGHUP')
      await waitFor(async () => (await ask()) === 'two', 'the reloaded extension')
    } finally { worker.child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
  })
})
