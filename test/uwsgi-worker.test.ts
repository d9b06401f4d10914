// `resident uwsgi-worker` through the real binary: raw uwsgi packets, and real nginx uwsgi_pass
// over a unix socket and TCP, answering exactly as Resident's own HTTP does.
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeUwsgiRequest } from '../src/modes/uwsgi/codec.ts'
import { startWorker, type Worker } from './helpers/fcgi.ts'
import { freePort, startNginx } from './helpers/nginx.ts'
import { requirePeers } from './helpers/peers.ts'
import { waitFor } from './helpers/poll.ts'
import { expectSameAsResident } from './helpers/same-as-resident.ts'

const ROOT = path.resolve(import.meta.dirname, '..')

/** Sends one packet (and body) and reads the answer to the connection's close. */
function exchange(address: string, packet: Buffer, body?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const [host, port] = address.split(':') as [string, string]
    const s = net.connect(Number(port), host)
    let out = ''
    s.on('data', (d) => { out += d.toString('latin1') })
    s.on('close', () => resolve(out))
    s.on('error', reject)
    s.write(packet)
    if (body) s.write(body)
  })
}

const vars = (method: string, uri: string, extra: [string, string][] = []): [string, string][] => {
  const [pathInfo, query = ''] = uri.split('?') as [string, string?]
  return [['REQUEST_METHOD', method], ['REQUEST_URI', uri], ['PATH_INFO', pathInfo], ['QUERY_STRING', query],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REMOTE_ADDR', '127.0.0.1'], ['SERVER_PORT', '80'], ['HTTP_HOST', 'localhost'], ...extra]
}

describe('uwsgi-worker: raw packets', () => {
  let worker: Worker
  beforeAll(async () => {
    const port = await freePort()
    worker = await startWorker(['--listen', `127.0.0.1:${port}`], { cwd: ROOT, command: 'uwsgi-worker' })
  })
  afterAll(async () => { worker.child.kill('SIGTERM'); await worker.exited })

  it('answers a vars request with an HTTP response, then closes', async () => {
    const out = await exchange(worker.address, encodeUwsgiRequest(vars('GET', '/hello/greet?name=uwsgi')))
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(out).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i)
    expect(out.slice(out.indexOf('\r\n\r\n') + 4)).toBe('{"hello":"uwsgi"}')
  })

  it('reads the unframed body to CONTENT_LENGTH', async () => {
    const body = Buffer.from('{"a":40,"b":2}')
    const packet = encodeUwsgiRequest(vars('POST', '/calc/add', [['CONTENT_TYPE', 'application/json'], ['CONTENT_LENGTH', String(body.length)]]))
    const out = await exchange(worker.address, packet, body)
    expect(out.slice(out.indexOf('\r\n\r\n') + 4)).toBe('{"sum":42}')
  })

  it('a packet that is not a vars request, or garbage, closes that connection; the worker serves on', async () => {
    expect(await exchange(worker.address, encodeUwsgiRequest([], 100))).toBe('')
    expect(await exchange(worker.address, Buffer.from([0, 10, 0, 0, 200, 0, 1, 2, 3, 4, 5, 6, 7, 8]))).toBe('')
    const out = await exchange(worker.address, encodeUwsgiRequest(vars('GET', '/calc/add?a=1&b=2')))
    expect(out.slice(out.indexOf('\r\n\r\n') + 4)).toBe('{"sum":3}')
    // The log line may follow the close it describes.
    await waitFor(() => /modifier1 100 refused/.test(worker.output()) && /uwsgi protocol error/.test(worker.output()), 'both refusals to be logged')
  })
})

describe('uwsgi-worker: signals, as a process manager sends them', () => {
  it('SIGHUP reloads every extension without a failed request; SIGQUIT drains and exits 0', async () => {
    const worker = await startWorker(['--listen', `127.0.0.1:${await freePort()}`], { cwd: ROOT, command: 'uwsgi-worker' })
    try {
      const first = await exchange(worker.address, encodeUwsgiRequest(vars('GET', '/hello/greet?name=a')))
      expect(first).toMatch(/^HTTP\/1\.1 200 OK/)
      worker.child.kill('SIGHUP')
      await waitFor(() => /reload/i.test(worker.output()), 'the SIGHUP reload to be logged')
      const after = await exchange(worker.address, encodeUwsgiRequest(vars('GET', '/hello/greet?name=b')))
      expect(after.slice(after.indexOf('\r\n\r\n') + 4)).toBe('{"hello":"b"}')
      worker.child.kill('SIGQUIT')
      expect(await worker.exited).toBe(0)
      expect(worker.output()).toMatch(/SIGQUIT: finishing in-flight uwsgi requests/)
    } finally {
      worker.child.kill('SIGKILL')
    }
  })
})

const peers = requirePeers('nginx')

describe.skipIf(!peers)('uwsgi-worker behind real nginx uwsgi_pass', () => {
  let dir: string
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'resident-uwsgi-peers-')) })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const paths = ['/hello/greet?name=nginx', '/hello/', '/calc/add?a=2&b=3', '/calc/div?a=1&b=0', '/calc/nope', '/nope/', '/secret/']

  const location = (pass: string) => `
  server {
    listen 127.0.0.1:{{PORT}};
    location / {
      include /etc/nginx/uwsgi_params;
      uwsgi_pass ${pass};
    }
  }`

  for (const kind of ['unix socket', 'TCP'] as const) {
    it(`serves /<extension>/<command> over a ${kind} exactly as Resident's HTTP does`, async () => {
      const listen = kind === 'TCP' ? `127.0.0.1:${await freePort()}` : `unix:${dir}/uwsgi-${Date.now()}.sock`
      const worker = await startWorker(['--listen', listen], { cwd: ROOT, command: 'uwsgi-worker' })
      const nginx = await startNginx(peers!.nginx, mkdtempSync(path.join(dir, 'n-')), location(listen))
      try {
        await expectSameAsResident(nginx.url, paths)
      } finally {
        await nginx.stop()
        worker.child.kill('SIGTERM')
        await worker.exited
      }
    })
  }
})
