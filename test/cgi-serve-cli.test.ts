// CGI both ways through the real `resident serve` binary: `--mode cgi` runs every extension as a
// process per request, and the gateway runs sh and the real php-cgi from a cgi-bin folder, with
// a filter in front. The other cgi tests build the server in the test process; this one is what
// an operator starts.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { requirePeers } from './helpers/peers.ts'
import { waitFor } from './helpers/poll.ts'

const peers = requirePeers('php-cgi')
const repo = path.resolve(import.meta.dirname, '..')
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }
const readPid = (file: string) => waitFor(() => { try { return Number(readFileSync(file, 'utf8').trim()) || 0 } catch { return 0 } }, `a pid in ${path.basename(file)}`)

let dir: string
let server: Awaited<ReturnType<typeof startCli>>
let base: string

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-cgi-serve-'))
  for (const d of ['extensions', 'filters', 'cgi-bin/private', 'cache']) mkdirSync(path.join(dir, d), { recursive: true })
  for (const f of ['hello.ts', 'counter.ts']) copyFileSync(path.join(repo, 'extensions', f), path.join(dir, 'extensions', f))
  writeFileSync(path.join(dir, 'extensions', 'probe.ts'), `import { Extension } from 'resident-host'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
export default class Probe extends Extension {
  pid() { return { pid: process.pid } }
  // A grandchild in the runner's process group must die with the group, whether the command
  // ignores its abort (held) or returns at once and leaves the child behind (not held).
  async hold({ file, held }, request) {
    // It ignores the signals a cancel sends the group: only the kill ends it.
    const child = spawn('sh', ['-c', 'trap "" HUP ALRM TERM; exec sleep 60'], { stdio: 'ignore' })
    writeFileSync(file, String(child.pid))
    await new Promise((resolve) => request.signal.addEventListener('abort', resolve))
    if (held !== 'no') await new Promise((resolve) => setTimeout(resolve, 60_000))
    return 'left'
  }
}`)
  writeFileSync(path.join(dir, 'filters', 'gate.ts'), `import { Filter, HttpError } from 'resident-host'
export default class Gate extends Filter {
  static paths = ['/cgi-bin/private/**']
  onAuthenticate(req) {
    if (req.headers.authorization !== 'Basic b3BlbjpzZXNhbWU=') throw new HttpError(401, 'no entry')
    req.user = 'alice'
  }
}`)
  const script = (name: string, body: string, mode = 0o755) => {
    writeFileSync(path.join(dir, 'cgi-bin', name), body)
    chmodSync(path.join(dir, 'cgi-bin', name), mode)
  }
  script('env.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nenv\n')
  script('private/who.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n%s %s" "$REMOTE_USER" "$AUTH_TYPE"\n')
  script('hello.php', '<?php header("Content-Type: application/json"); echo json_encode(["hello" => $_GET["name"] ?? "world", "script" => $_SERVER["SCRIPT_NAME"], "redirect" => $_SERVER["REDIRECT_STATUS"] ?? null]);\n', 0o644)
  writeFileSync(path.join(dir, 'resident.config.json'), JSON.stringify({
    cgi: { bin: { '/cgi-bin/': 'cgi-bin' }, interpreters: { '.php': peers?.['php-cgi'] ?? 'php-cgi' } },
    requestTimeout: '30s',
    // Shutdown waits this long for requests in flight, then closes their connections.
    drainTimeout: '1s',
  }))
  server = await startCli(['serve', '--mode', 'cgi', '--port', '0'], {
    cwd: dir,
    env: { RESIDENT_CACHE_DIR: path.join(dir, 'cache'), RESIDENT_SERVE_SECRET: 'must-not-leak' },
  })
  base = server.url.replace(/\/$/, '')
}, 60_000)

afterAll(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGKILL')
    await server.exited
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('resident serve --mode cgi: a process per request', () => {
  it('serves the unchanged example, and says which mode it runs', async () => {
    expect(await (await fetch(`${base}/hello/greet?name=cgi`)).json()).toEqual({ hello: 'cgi' })
    const status = await (await fetch(`${base}/_resident/status`)).json() as { host: { mode: string }; extensions: Array<{ name: string; mode: string }> }
    expect(status.host.mode).toBe('cgi')
    expect(status.extensions.find((e) => e.name === 'hello')?.mode).toBe('cgi')
  })

  it('runs every request in a new process, so the counter starts from nothing each time', async () => {
    const pids = new Set<number>()
    for (let i = 0; i < 3; i++) pids.add(((await (await fetch(`${base}/probe/pid`)).json()) as { pid: number }).pid)
    expect(pids.size).toBe(3)
    expect(pids.has(server.child.pid!)).toBe(false)
    for (let i = 0; i < 2; i++) expect(await (await fetch(`${base}/counter/increment`)).json()).toEqual({ count: 1 })
  })

  for (const held of ['yes', 'no']) {
    it(`the client leaving kills the runner's process group, a grandchild included (the command ${held === 'yes' ? 'ignores its abort' : 'returns at once'})`, async () => {
      const file = path.join(dir, `left-${held}.pid`)
      const req = http.get(`${base}/probe/hold?held=${held}&file=${encodeURIComponent(file)}`)
      req.on('error', () => {})
      const pid = await readPid(file)
      expect(alive(pid)).toBe(true)
      req.destroy()
      await waitFor(() => !alive(pid), 'the grandchild to be killed')
      // And the server goes on serving.
      expect((await fetch(`${base}/hello/greet`)).status).toBe(200)
    })
  }
})

describe('resident serve: the CGI gateway', () => {
  it('gives a sh script the RFC 3875 environment and nothing of the host\'s', async () => {
    const res = await fetch(`${base}/cgi-bin/env.sh/extra?a=1`, { headers: { proxy: 'http://evil.test', 'x-trace': 't1' } })
    expect(res.status).toBe(200)
    const env = Object.fromEntries((await res.text()).split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    expect(env).toMatchObject({ GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '/cgi-bin/env.sh', PATH_INFO: '/extra', QUERY_STRING: 'a=1', HTTP_X_TRACE: 't1', REMOTE_ADDR: '127.0.0.1' })
    expect(env.PATH_TRANSLATED).toBe(path.join(dir, 'cgi-bin', 'extra'))
    for (const absent of ['HTTP_PROXY', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'RESIDENT_SERVE_SECRET', 'RESIDENT_CACHE_DIR']) expect(env).not.toHaveProperty(absent)
  })

  it.skipIf(!peers)('runs the real php-cgi on a PHP script', async () => {
    const res = await fetch(`${base}/cgi-bin/hello.php?name=php`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ hello: 'php', script: '/cgi-bin/hello.php', redirect: '200' })
  })

  it('a filter authenticates in front of a program that knows nothing of it', async () => {
    const refused = await fetch(`${base}/cgi-bin/private/who.sh`)
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { error: { requestId: string } }).error.requestId).toEqual(expect.any(String))
    const ok = await fetch(`${base}/cgi-bin/private/who.sh`, { headers: { authorization: 'Basic b3BlbjpzZXNhbWU=' } })
    // AUTH_TYPE is the Authorization scheme; the credentials themselves never reach the program.
    expect(await ok.text()).toBe('alice Basic')
  })
})

describe('resident serve --mode cgi stopping', () => {
  it('SIGTERM ends a runner still at work, its process group with it, and the server exits', async () => {
    const file = path.join(dir, 'shutdown.pid')
    const req = http.get(`${base}/probe/hold?file=${encodeURIComponent(file)}`)
    req.on('error', () => {})
    const pid = await readPid(file)
    server.child.kill('SIGTERM')
    await waitFor(() => !alive(pid), 'the grandchild to be killed at shutdown')
    expect(await server.exited).toBe(0)
  })
})
