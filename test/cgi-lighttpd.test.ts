import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN } from './helpers/cli.ts'
import { peerVersion, requirePeers } from './helpers/peers.ts'
import { waitFor } from './helpers/poll.ts'

const peers = requirePeers('lighttpd')

/** A port nobody listens on now (lighttpd cannot be told to pick one and report it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    }).on('error', reject)
  })
}

let dir: string
let base: string
let lighttpd: ChildProcess | undefined

beforeAll(async () => {
  if (!peers) return
  dir = mkdtempSync(path.join(tmpdir(), 'resident-lighttpd-'))
  const www = path.join(dir, 'www')
  const ext = path.join(dir, 'extensions')
  mkdirSync(www)
  mkdirSync(ext)
  writeFileSync(path.join(ext, 'hello.ts'), readFileSync(path.resolve(import.meta.dirname, '../extensions/hello.ts')))
  writeFileSync(path.join(ext, 'seen.ts'), `import { Extension } from 'resident-host'
/** What the extension sees of a request that came through lighttpd's mod_cgi. */
export default class Seen extends Extension {
  static commands = { echo: { methods: ['GET', 'POST', 'PUT'] } }
  echo(params, request) {
    const { id, method, url, path, query, body, contentType, clientAddress, extension, command } = request
    return { params, id, method, url, path, query, body, contentType, clientAddress, extension, command,
      headers: { 'x-custom': request.headers['x-custom'], proxy: request.headers.proxy, 'content-type': request.headers['content-type'] } }
  }
  fail() { throw new Error('boom') }
}`)
  // lighttpd gives CGI programs no PATH: the wrapper names node and resident by absolute path.
  for (const name of ['hello', 'seen']) {
    const wrapper = path.join(www, `${name}.cgi`)
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" cgi "${path.join(ext, `${name}.ts`)}"\n`)
    chmodSync(wrapper, 0o755)
  }
  const port = await freePort()
  const conf = path.join(dir, 'lighttpd.conf')
  writeFileSync(conf, [
    `server.document-root = "${www}"`,
    `server.bind = "127.0.0.1"`,
    `server.port = ${port}`,
    `server.errorlog = "${path.join(dir, 'error.log')}"`,
    // CGI programs' stderr: lighttpd's breakage log.
    `server.breakagelog = "${path.join(dir, 'breakage.log')}"`,
    `server.modules = ( "mod_cgi" )`,
    `cgi.assign = ( ".cgi" => "" )`,
    // Each test run gets a cache of its own, so the first request really builds.
    `setenv.add-environment = ( "RESIDENT_CACHE_DIR" => "${path.join(dir, 'cache')}" )`,
    '',
  ].join('\n'))
  // setenv is a module of its own.
  writeFileSync(conf, readFileSync(conf, 'utf8').replace('"mod_cgi"', '"mod_setenv", "mod_cgi"'))
  lighttpd = spawn(peers.lighttpd, ['-D', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  base = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    try { return (await fetch(`${base}/nothing-here`)).status === 404 } catch { return false }
  }, 'lighttpd to listen')
})

afterAll(() => {
  lighttpd?.kill('SIGKILL')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!peers)(`lighttpd mod_cgi runs resident cgi (${peers ? peerVersion(peers.lighttpd) : 'missing'})`, () => {
  it('PATH_INFO /<command> picks the command; the query gives its parameters', async () => {
    const res = await fetch(`${base}/hello.cgi/greet?name=lighttpd`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(await res.json()).toEqual({ hello: 'lighttpd' })
  })

  it('no command is the default command (index)', async () => {
    const res = await fetch(`${base}/hello.cgi`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(await res.text()).toContain('Hello from Resident')
  })

  it('the request as the extension sees it through mod_cgi (golden)', async () => {
    const res = await fetch(`${base}/seen.cgi/echo?a=1&a=2&b=x`, {
      method: 'POST',
      body: JSON.stringify({ c: [1, 2] }),
      headers: { 'content-type': 'application/json', 'x-custom': 'yes', proxy: 'http://evil:1', 'x-request-id': 'from-lighttpd-1' },
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      params: { a: ['1', '2'], b: 'x', c: [1, 2] },
      id: 'from-lighttpd-1',
      method: 'POST',
      url: '/seen.cgi/echo?a=1&a=2&b=x',
      path: '/seen.cgi/echo',
      query: { a: ['1', '2'], b: 'x' },
      body: { c: [1, 2] },
      contentType: 'application/json',
      clientAddress: '127.0.0.1',
      extension: 'seen',
      command: 'echo',
      // lighttpd drops Proxy (httpoxy) before the program sees it.
      headers: { 'x-custom': 'yes', 'content-type': 'application/json' },
    })
  })

  it('errors answer with Resident\'s status and JSON body', async () => {
    const unknown = await fetch(`${base}/hello.cgi/nope`)
    expect(unknown.status).toBe(404)
    expect((await unknown.json()).error).toMatchObject({ code: 'RES_ERR_UNKNOWN_COMMAND', requestId: expect.any(String) })
    const method = await fetch(`${base}/hello.cgi/greet`, { method: 'DELETE' })
    expect(method.status).toBe(405)
    expect(method.headers.get('allow')).toBe('GET, HEAD, POST')
    const bad = await fetch(`${base}/hello.cgi/greet?name=${'x'.repeat(200)}`)
    expect(bad.status).toBe(400)
    expect((await bad.json()).error.code).toBe('RES_ERR_BAD_PARAM')
    const failed = await fetch(`${base}/seen.cgi/fail`)
    expect(failed.status).toBe(500)
    expect((await failed.json()).error.code).toBe('RES_ERR_COMMAND_FAILED')
    // The stack went to stderr, which lighttpd writes to its breakage log.
    await waitFor(() => { try { return readFileSync(path.join(dir, 'breakage.log'), 'utf8').includes('boom') } catch { return false } }, 'the error in lighttpd\'s log')
  })
})
