import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requirePeers } from './helpers/peers.ts'
import { waitFor } from './helpers/poll.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

const peers = requirePeers('php-cgi')
// Python is not a protocol peer (.ci/run installs it all the same); the test runs wherever python3 is.
const python = spawnSync('python3', ['-c', '0']).status === 0

let ts: TestServer
let base: string
let bin: string

const script = (name: string, body: string, mode = 0o755) => {
  const p = path.join(bin, name)
  mkdirSync(path.dirname(p), { recursive: true })
  writeFileSync(p, body)
  chmodSync(p, mode)
  return p
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

function envOf(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

beforeAll(async () => {
  process.env.RESIDENT_TEST_SECRET = 'must-not-leak'
  ts = await startTestServer({
    config: {
      // Long enough for a python or php-cgi start on a loaded machine; the deadline tests wait it out.
      cgi: { bin: { '/cgi-bin/': 'cgi-bin' }, interpreters: { '.php': peers?.['php-cgi'] ?? 'php-cgi' }, timeout: '5s', maxHeaderSize: 1024, maxOutput: 100_000 },
    },
    filters: {
      'cgi-auth.ts': `import { Filter, HttpError } from 'resident-host'
export default class CgiAuth extends Filter {
  static paths = ['/cgi-bin/private/**']
  onAuthenticate(req) {
    if (req.headers.authorization !== 'Bearer open-sesame') throw new HttpError(401, 'no entry')
    req.user = { name: 'alice' }
  }
  onSendResponse(req, res) { res.setHeader('x-filtered', 'yes') }
}`,
    },
  })
  bin = path.join(ts.dir, 'cgi-bin')
  mkdirSync(bin)
  base = await ts.listen()
  script('env.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\necho "ARGC=$#"\nenv\n')
  script('private/env.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nenv\n')
  script('echo.sh', '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\r\\nX-Length: %s\\r\\n\\r\\n" "$CONTENT_LENGTH"\nexec cat\n')
  script('status.sh', '#!/bin/sh\nprintf "Status: 404 Nothing Here\\nContent-Type: text/plain\\nSet-Cookie: a=1\\nSet-Cookie: b=2\\n\\ngone\\n"\n')
  script('away.sh', '#!/bin/sh\nprintf "Location: https://example.test/elsewhere\\n\\n"\n')
  script('local.sh', '#!/bin/sh\nprintf "Location: /cgi-bin/env.sh?from=local\\n\\n"\n')
  script('loop.sh', '#!/bin/sh\nprintf "Location: /cgi-bin/loop.sh\\n\\n"\n')
  script('to-extension.sh', '#!/bin/sh\nprintf "Location: /hello/greet?name=cgi\\n\\n"\n')
  script('notype.sh', '#!/bin/sh\nprintf "Status: 200\\n\\n<script>alert(1)</script>"\n')
  script('empty204.sh', '#!/bin/sh\nprintf "Status: 204 No Content\\n\\n"\n')
  script('garbage.sh', '#!/bin/sh\necho "oops, I forgot the head" >&2\necho "hello world"\n')
  script('bighead.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\nX-Big: %2000s\\n\\n" x\n')
  script('bigbody.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nhead -c 1000000 /dev/zero\n')
  script('plain.txt', 'not a program', 0o644)
  script('form.py', '#!/usr/bin/env python3\nimport os, sys\nn = int(os.environ.get("CONTENT_LENGTH") or 0)\ndata = sys.stdin.read(n)\nsys.stdout.write("Content-Type: text/plain\\r\\nX-Py: 1\\r\\n\\r\\n" + os.environ["REQUEST_METHOD"] + " " + data + " " + os.environ.get("PATH_INFO", "-"))\n')
  script('info.php', '<?php header("X-Php: yes"); echo "name=", $_GET["name"] ?? "", ";script=", $_SERVER["SCRIPT_NAME"], ";post=", $_POST["a"] ?? "", ";path=", $_SERVER["PATH_INFO"] ?? "";\n', 0o644)
  writeFileSync(path.join(ts.dir, 'outside.sh'), '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nescaped\\n"\n', { mode: 0o755 })
  symlinkSync(path.join(ts.dir, 'outside.sh'), path.join(bin, 'link.sh'))
  ts.writeExtension('hello.ts', `import { Extension } from 'resident-host'
export default class Hello extends Extension { greet({ name }) { return { hello: name } } }`)
})
afterAll(async () => { await ts?.close() })

describe('the CGI gateway runs programs from cgi.bin', () => {
  it('gives a sh script the RFC 3875 environment and nothing of the host', async () => {
    const res = await fetch(`${base}/cgi-bin/env.sh/extra/p%20ath?-s+x=1`, { headers: { proxy: 'http://evil:1', 'x-thing': 'v' } })
    expect(res.status).toBe(200)
    const env = envOf(await res.text())
    expect(env).toMatchObject({
      ARGC: '0', // no argv from the query, even an "indexed" one
      GATEWAY_INTERFACE: 'CGI/1.1',
      REQUEST_METHOD: 'GET',
      SCRIPT_NAME: '/cgi-bin/env.sh',
      PATH_INFO: '/extra/p ath',
      PATH_TRANSLATED: path.join(bin, 'extra/p ath'),
      QUERY_STRING: '-s+x=1',
      REQUEST_URI: '/cgi-bin/env.sh/extra/p%20ath?-s+x=1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_NAME: '127.0.0.1',
      REMOTE_ADDR: '127.0.0.1',
      HTTP_X_THING: 'v',
      REDIRECT_STATUS: '200',
    })
    expect(env.SERVER_SOFTWARE).toMatch(/^Resident\//)
    expect(env.SCRIPT_FILENAME).toBe(path.join(bin, 'env.sh'))
    expect(env.HTTP_PROXY).toBeUndefined()
    expect(env.CONTENT_LENGTH).toBeUndefined()
    expect(env.CONTENT_TYPE).toBeUndefined()
    expect(env.RESIDENT_TEST_SECRET).toBeUndefined()
    expect(Object.keys(env).filter((k) => k.startsWith('NODE') || k.startsWith('VITEST'))).toEqual([])
  })

  it('streams a request body to stdin and the output back, with CONTENT_LENGTH', async () => {
    const body = Buffer.alloc(300_000, 'abc')
    const res = await fetch(`${base}/cgi-bin/echo.sh`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    // The output cap is 100 000 bytes: echoing 300 000 cuts the response off.
    await expect(res.arrayBuffer()).rejects.toThrow()
    const small = Buffer.from('hello, stdin')
    const ok = await fetch(`${base}/cgi-bin/echo.sh`, { method: 'POST', body: small })
    expect(ok.headers.get('x-length')).toBe(String(small.length))
    expect(Buffer.from(await ok.arrayBuffer())).toEqual(small)
  })

  it('a chunked body is measured before the program starts', async () => {
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request(`${base}/cgi-bin/echo.sh`, { method: 'POST' }, (r) => {
        let b = ''
        r.on('data', (d) => { b += d })
        r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body: b }))
      })
      req.on('error', reject)
      req.write('part one, ')
      req.end('part two')
    })
    expect(res.status).toBe(200)
    expect(res.headers['x-length']).toBe('18')
    expect(res.body).toBe('part one, part two')
  })

  it('Status, its reason and repeated headers', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve) => http.get(`${base}/cgi-bin/status.sh`, resolve))
    expect(res.statusCode).toBe(404)
    expect(res.statusMessage).toBe('Nothing Here')
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    res.resume()
  })

  it('an absolute Location is a 302 for the client; a local one is answered in the server, as a GET', async () => {
    const away = await fetch(`${base}/cgi-bin/away.sh`, { redirect: 'manual' })
    expect(away.status).toBe(302)
    expect(away.headers.get('location')).toBe('https://example.test/elsewhere')
    const local = await fetch(`${base}/cgi-bin/local.sh`, { method: 'POST', body: 'dropped' })
    expect(local.status).toBe(200)
    const env = envOf(await local.text())
    expect(env).toMatchObject({ SCRIPT_NAME: '/cgi-bin/env.sh', QUERY_STRING: 'from=local', REQUEST_METHOD: 'GET' })
    expect(env.CONTENT_LENGTH).toBeUndefined()
    const ext = await fetch(`${base}/cgi-bin/to-extension.sh`)
    expect(await ext.json()).toEqual({ hello: 'cgi' })
    const loop = await fetch(`${base}/cgi-bin/loop.sh`)
    expect(loop.status).toBe(502)
    expect((await loop.json()).error).toMatchObject({ code: 'RES_ERR_CGI_BAD_OUTPUT', message: expect.stringContaining('local redirects') })
  })

  it('a body without Content-Type is sent as bytes the browser must not sniff; an empty 204 gets no type', async () => {
    const res = await fetch(`${base}/cgi-bin/notype.sh`)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await res.text()).toBe('<script>alert(1)</script>')
    const empty = await fetch(`${base}/cgi-bin/empty204.sh`)
    expect(empty.status).toBe(204)
    expect(empty.headers.get('content-type')).toBeNull()
  })

  it('invalid output is a 502 naming the program, with its stderr in the log', async () => {
    const res = await fetch(`${base}/cgi-bin/garbage.sh`)
    expect(res.status).toBe(502)
    const body = await res.json()
    expect(body.error.code).toBe('RES_ERR_CGI_BAD_OUTPUT')
    expect(body.error.message).toContain('/cgi-bin/garbage.sh')
    expect(body.error.requestId).toBeTruthy()
    await waitFor(() => ts.logs.find((l) => l.program === '/cgi-bin/garbage.sh' && String(l.stderr).includes('forgot the head')), 'the stderr log line')
  })

  it('caps the head and the output', async () => {
    const head = await fetch(`${base}/cgi-bin/bighead.sh`)
    expect(head.status).toBe(502)
    expect((await head.json()).error.code).toBe('RES_ERR_CGI_OUTPUT_TOO_LARGE')
    const body = await fetch(`${base}/cgi-bin/bigbody.sh`)
    expect(body.status).toBe(200)
    await expect(body.arrayBuffer()).rejects.toThrow()
  })

  it('past its deadline the process group is killed and the client gets a 504', async () => {
    const pidFile = path.join(bin, '..', 'slow.pid')
    script('slow.sh', `#!/bin/sh\nsleep 30 &\necho $! > "${pidFile}"\nwait\n`)
    const res = await fetch(`${base}/cgi-bin/slow.sh`)
    expect(res.status).toBe(504)
    expect((await res.json()).error.code).toBe('RES_ERR_CGI_TIMEOUT')
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    await waitFor(() => !alive(pid), 'the grandchild to be killed')
  })

  it('the client leaving kills the process group (a grandchild included)', async () => {
    const pidFile = path.join(bin, '..', 'slowbody.pid')
    script('slowbody2.sh', `#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nstart\\n"\nsleep 30 &\necho $! > "${pidFile}"\nwait\n`)
    const req = http.get(`${base}/cgi-bin/slowbody2.sh`)
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve))
    expect(res.statusCode).toBe(200)
    const pid = Number(await waitFor(() => { try { return readFileSync(pidFile, 'utf8').trim() } catch { return '' } }, 'the grandchild pid'))
    expect(alive(pid)).toBe(true)
    req.destroy()
    await waitFor(() => !alive(pid), 'the grandchild to be killed')
    // Killed because the client left, not by the deadline.
    expect(ts.logs.some((l) => String(l.msg).includes('slowbody2.sh: the client went away'))).toBe(true)
  })

  it('a deadline after the head kills the group too', async () => {
    const pidFile = path.join(bin, '..', 'slowhead.pid')
    script('slowbody3.sh', `#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nstart\\n"\nsleep 30 &\necho $! > "${pidFile}"\nwait\n`)
    const res = await fetch(`${base}/cgi-bin/slowbody3.sh`)
    expect(res.status).toBe(200)
    await expect(res.text()).rejects.toThrow()
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    await waitFor(() => !alive(pid), 'the grandchild to be killed')
  })

  it('never runs a file outside the folder, a hidden one, or a non-executable one', async () => {
    for (const p of ['/cgi-bin/../outside.sh', '/cgi-bin/%2e%2e/outside.sh', '/cgi-bin/link.sh', '/cgi-bin/.hidden', '/cgi-bin//env.sh', '/cgi-bin/missing.sh', '/cgi-bin/']) {
      const res = await fetch(`${base}${p}`)
      expect([400, 404], p).toContain(res.status)
      const text = await res.text()
      expect(text, p).not.toContain('escaped')
    }
    const encodedSlash = await fetch(`${base}/cgi-bin/env.sh/a%2fb`)
    expect(encodedSlash.status).toBe(400)
    const plain = await fetch(`${base}/cgi-bin/plain.txt`)
    expect(plain.status).toBe(403)
    expect((await plain.json()).error.code).toBe('RES_ERR_CGI_NOT_EXECUTABLE')
  })

  it('filters run in front: authentication, REMOTE_USER, and the response side', async () => {
    const denied = await fetch(`${base}/cgi-bin/private/env.sh`)
    expect(denied.status).toBe(401)
    const ok = await fetch(`${base}/cgi-bin/private/env.sh`, { headers: { authorization: 'Bearer open-sesame' } })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-filtered')).toBe('yes')
    const env = envOf(await ok.text())
    expect(env.REMOTE_USER).toBe('alice')
    expect(env.AUTH_TYPE).toBe('Bearer')
    expect(env.HTTP_AUTHORIZATION).toBeUndefined()
  })

  it.skipIf(!python)('runs a python program: CRLF head, the body on stdin', async () => {
    const res = await fetch(`${base}/cgi-bin/form.py/x`, { method: 'PUT', body: 'a=1&b=2' })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-py')).toBe('1')
    expect(await res.text()).toBe('PUT a=1&b=2 /x')
  })

  it('HEAD: the program runs, its body is not sent', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve) => http.request(`${base}/cgi-bin/status.sh`, { method: 'HEAD' }, resolve).end())
    expect(res.statusCode).toBe(404)
    let bytes = 0
    res.on('data', (d: Buffer) => { bytes += d.length })
    await new Promise((r) => res.on('end', r))
    expect(bytes).toBe(0)
  })

  it.skipIf(!peers)('runs the real php-cgi with SCRIPT_FILENAME and REDIRECT_STATUS', async () => {
    const res = await fetch(`${base}/cgi-bin/info.php/more?name=php`, { method: 'POST', body: 'a=posted', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-php')).toBe('yes')
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await res.text()).toBe('name=php;script=/cgi-bin/info.php;post=posted;path=/more')
  })
})
