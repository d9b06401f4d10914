import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN } from './helpers/cli.ts'

let dir: string
let entry: string

/** Runs `resident cgi <args>` as a web server would: meta-variables in the environment, the body on stdin. */
function cgi(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'cgi', ...args], { env: { PATH: process.env.PATH ?? '', RESIDENT_CACHE_DIR: path.join(dir, 'cache'), ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(stdin)
  })
}

const GET = { GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET' }

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'resident-cgi-cli-'))
  entry = path.join(dir, 'echo.ts')
  writeFileSync(entry, `import { Extension } from 'resident-host'
export default class Echo extends Extension {
  static commands = { body: { methods: ['POST'] } }
  body(params, req) { return { params, length: req.rawBody.length, type: req.contentType } }
  index() { return new Response(null, { status: 303, headers: { location: '/elsewhere', 'set-cookie': 'a=1' } }) }
  async *objects() { yield { n: 1 }; yield [2, 'two'] }
}`)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('resident cgi, as a web server runs it', () => {
  it('writes a CGI response: Status, headers, blank line, body', async () => {
    const r = await cgi([entry], { ...GET, PATH_INFO: '' })
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('Status: 303 See Other\nlocation: /elsewhere\nset-cookie: a=1\n\n')
  })

  it('streams objects as every mode does: NDJSON, or Server-Sent Events when the client asks', async () => {
    const nd = await cgi([entry], { ...GET, PATH_INFO: '/objects' })
    expect(nd.stdout).toBe('Status: 200 OK\ncontent-type: application/x-ndjson; charset=utf-8\n\n{"n":1}\n[2,"two"]\n')
    const ev = await cgi([entry], { ...GET, PATH_INFO: '/objects', HTTP_ACCEPT: 'text/event-stream' })
    expect(ev.stdout).toContain('content-type: text/event-stream; charset=utf-8\n')
    expect(ev.stdout.split('\n\n').slice(1).join('\n\n')).toBe('data: {"n":1}\n\ndata: [2,"two"]\n\n')
  })

  it('reads exactly CONTENT_LENGTH bytes of stdin, never more', async () => {
    const r = await cgi([entry], { GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/body', CONTENT_LENGTH: '7', CONTENT_TYPE: 'application/x-www-form-urlencoded', QUERY_STRING: 'q=1' }, 'a=1&b=2&c=3-and-more-than-was-announced')
    expect(r.stdout.split('\n\n')[1]).toBe(JSON.stringify({ params: { q: '1', a: '1', b: '2' }, length: 7, type: 'application/x-www-form-urlencoded' }))
  })

  it('a body shorter than CONTENT_LENGTH is a 400', async () => {
    const r = await cgi([entry], { GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/body', CONTENT_LENGTH: '100' }, 'short')
    expect(r.stdout).toMatch(/^Status: 400 Bad Request\n/)
    expect(r.stdout).toContain('"RES_ERR_BAD_REQUEST"')
  })

  it('run outside a web server, it says so (400), and bad usage exits 2', async () => {
    const r = await cgi([entry], {})
    expect(r.stdout).toMatch(/^Status: 400/)
    expect(r.stdout).toContain('GATEWAY_INTERFACE')
    expect((await cgi([], GET)).code).toBe(2)
    expect((await cgi([entry, 'extra'], GET)).code).toBe(2)
  })

  it('a missing entry is a 500 RES_ERR_LOAD_FAILED, the reason on stderr', async () => {
    const r = await cgi([path.join(dir, 'nope.ts')], GET)
    expect(r.stdout).toMatch(/^Status: 500/)
    expect(r.stdout).toContain('RES_ERR_LOAD_FAILED')
    expect(r.stdout).not.toContain('nope.ts')
    expect(r.stderr).toContain('nope.ts')
  })
})
