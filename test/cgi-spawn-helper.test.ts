// The spawn helper, through the real `resident serve`: CGI programs are started by a small helper
// process (so the server's event loop never forks), the helper dying costs only the requests it
// had in hand (a clear 502) and a new one takes over, and nothing outlives the server.
import fc from 'fast-check'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { requirePeers } from './helpers/peers.ts'
import { waitFor } from './helpers/poll.ts'

const peers = requirePeers('php-cgi')
const groupAlive = (pid: number) => { try { process.kill(-pid, 0); return true } catch { return false } }
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }
const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1])
const commandOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')

let dir: string
let server: Awaited<ReturnType<typeof startCli>>
let direct: Awaited<ReturnType<typeof startCli>> | undefined
let base: string

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d) => { body += d }).on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
}

/** The helper that started the programs: the parent of a program, itself a child of the server. */
async function helperPid(): Promise<number> {
  const { status, body } = await get(`${base}/cgi-bin/parent.sh`)
  expect(status).toBe(200)
  return Number(body)
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-spawn-helper-'))
  mkdirSync(path.join(dir, 'cgi-bin'), { recursive: true })
  mkdirSync(path.join(dir, 'extensions'))
  const script = (name: string, body: string, mode = 0o755) => {
    writeFileSync(path.join(dir, 'cgi-bin', name), body)
    chmodSync(path.join(dir, 'cgi-bin', name), mode)
  }
  script('parent.sh', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n%s" "$PPID"\n')
  // Writes its pid (its process group's id) to a file named by the query, then takes its time.
  script('slow.sh', `#!/bin/sh\necho $$ >> "${dir}/$QUERY_STRING.pids"\nsleep "\${HTTP_X_SLEEP:-0.3}"\nprintf "Content-Type: text/plain\\n\\nslow"\n`)
  script('echo.sh', '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\n\\n"\nexec cat\n')
  script('hello.php', '<?php header("Content-Type: text/plain"); echo "php ", $_GET["n"] ?? "";\n', 0o644)
  writeFileSync(path.join(dir, 'extensions', 'hello.ts'), `import { Extension } from 'resident-host'
export default class Hello extends Extension { greet({ name }) { return { hello: name } } }`)
  const config = (spawn: string) => JSON.stringify({
    cgi: { bin: { '/cgi-bin/': 'cgi-bin' }, interpreters: { '.php': peers?.['php-cgi'] ?? 'php-cgi' }, spawn },
    extensions: { hello: { mode: 'cgi' } },
  })
  writeFileSync(path.join(dir, 'resident.config.json'), config('helper'))
  server = await startCli(['serve', '--port', '0'], { cwd: dir, env: { RESIDENT_CACHE_DIR: path.join(dir, 'cache') } })
  base = server.url.replace(/\/$/, '')
}, 60_000)

afterAll(async () => {
  for (const s of [server, direct]) {
    if (s && s.child.exitCode === null) {
      s.child.kill('SIGKILL')
      await s.exited
    }
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('the spawn helper', () => {
  it('starts the programs, and is a child of the server', async () => {
    const helper = await helperPid()
    expect(helper).not.toBe(server.child.pid)
    expect(parentOf(helper)).toBe(server.child.pid)
    expect(commandOf(helper)).toContain('spawn-helper')
    // The same helper again: it is long-lived.
    expect(await helperPid()).toBe(helper)
  })

  it('carries a body both ways, and the cgi mode, through the same helper', async () => {
    const body = Buffer.alloc(300_000, 'abc')
    const res = await fetch(`${base}/cgi-bin/echo.sh`, { method: 'POST', body })
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true)
    expect(await (await fetch(`${base}/hello/greet?name=helper`)).json()).toEqual({ hello: 'helper' })
  })

  it('dies while a program runs: that request gets a 502 naming the helper, the program is killed, a new helper serves the next', async () => {
    const helper = await helperPid()
    const pending = get(`${base}/cgi-bin/slow.sh?died`, ).catch((e: Error) => ({ status: 0, body: e.message }))
    const pid = await waitFor(() => { try { return Number(readFileSync(path.join(dir, 'died.pids'), 'utf8').trim()) } catch { return 0 } }, 'the slow program to start')
    process.kill(helper, 'SIGKILL')
    const res = await pending
    expect(res.status).toBe(502)
    const error = (JSON.parse(res.body) as { error: { code: string; message: string; requestId: string } }).error
    expect(error.code).toBe('RES_ERR_CGI_FAILED')
    expect(error.message).toMatch(/\/cgi-bin\/slow\.sh: the spawn helper was killed by SIGKILL while the program ran; its process group was killed/)
    expect(error.requestId).toEqual(expect.any(String))
    await waitFor(() => !groupAlive(pid), 'the program\'s process group to be killed')
    const next = await helperPid()
    expect(next).not.toBe(helper)
    expect(parentOf(next)).toBe(server.child.pid)
  })

  it('dies at any moment among requests of every kind: each answers right or gets a clear 502, nothing is left running, the server serves on', async () => {
    const action = fc.constantFrom('sh', 'slow', 'php', 'mode', 'body', 'kill')
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(action, fc.integer({ min: 0, max: 120 })), { minLength: 4, maxLength: 10 }), async (plan) => {
      const tag = `run${++run}`
      const kills = plan.filter(([what]) => what === 'kill').length
      const results = await Promise.all(plan.map(async ([what, delay], i) => {
        await new Promise((r) => setTimeout(r, delay))
        if (what === 'kill') {
          const pid = await helperPid().catch(() => 0)
          if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL')
          return null
        }
        const res = await fetch(what === 'sh' ? `${base}/cgi-bin/parent.sh`
          : what === 'slow' ? `${base}/cgi-bin/slow.sh?${tag}`
          : what === 'php' ? `${base}/cgi-bin/hello.php?n=${i}`
          : what === 'mode' ? `${base}/hello/greet?name=${i}`
          : `${base}/cgi-bin/echo.sh`, what === 'body' ? { method: 'POST', body: `body ${i}` } : {})
        let text: string
        try {
          text = await res.text()
        } catch (e) {
          // A program killed with the helper after its head was sent: the response is cut off.
          return { what, ok: kills > 0, text: `${res.status}, then ${(e as Error).message}` }
        }
        if (res.status === 502) {
          const error = (JSON.parse(text) as { error: { code: string; message: string } }).error
          return { what, ok: error.code === 'RES_ERR_CGI_FAILED' && /the spawn helper (was killed|exited)/.test(error.message), text }
        }
        const expected = what === 'sh' ? /^\d+$/ : what === 'slow' ? /^slow$/ : what === 'php' ? new RegExp(`^php ${i}$`) : what === 'mode' ? new RegExp(`^\\{"hello":"${i}"\\}$`) : new RegExp(`^body ${i}$`)
        // php-cgi or a shell the killed helper had started may be cut short, but never answers wrong.
        return { what, ok: res.status === 200 && expected.test(text), text: `${res.status} ${text}` }
      }))
      for (const r of results) if (r !== null) expect(r.ok, `${r.what}: ${r.text}`).toBe(true)
      let pids: number[] = []
      try { pids = readFileSync(path.join(dir, `${tag}.pids`), 'utf8').trim().split('\n').map(Number) } catch { /* no slow program ran */ }
      await waitFor(() => pids.every((p) => !groupAlive(p)), 'every slow program to be gone')
      // Serving on: a request racing the server's news of a killed helper may still get the clear
      // 502; then the next ones are served by a new helper.
      await waitFor(async () => {
        const { status, body } = await get(`${base}/cgi-bin/parent.sh`)
        if (status !== 200) expect(body).toMatch(/RES_ERR_CGI_FAILED.*the spawn helper/)
        return status === 200
      }, 'a request to be served after the helper was killed')
    }), { numRuns: 4 })
  }, 120_000)

  it('"cgi.spawn": "direct" makes the server fork programs itself', async () => {
    const other = path.join(dir, 'direct')
    mkdirSync(other)
    writeFileSync(path.join(other, 'resident.config.json'), JSON.stringify({ cgi: { bin: { '/cgi-bin/': '../cgi-bin' }, spawn: 'direct' } }))
    direct = await startCli(['serve', '--port', '0'], { cwd: other })
    const { status, body } = await get(`${direct.url.replace(/\/$/, '')}/cgi-bin/parent.sh`)
    expect(status).toBe(200)
    expect(Number(body)).toBe(direct.child.pid)
  })

  it('outlives no server: a server killed outright takes the helper and its programs with it', async () => {
    const helper = await helperPid()
    const req = http.get(`${base}/cgi-bin/slow.sh?orphan`, { headers: { 'x-sleep': '60' } })
    req.on('error', () => {})
    const pid = await waitFor(() => { try { return Number(readFileSync(path.join(dir, 'orphan.pids'), 'utf8').trim()) } catch { return 0 } }, 'the slow program to start')
    server.child.kill('SIGKILL')
    await server.exited
    await waitFor(() => !alive(helper), 'the helper to exit')
    await waitFor(() => !groupAlive(pid), 'the program\'s process group to be killed')
  })
})
