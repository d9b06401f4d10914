// A gateway in front of Resident (nginx → fcgi-worker, nginx → uwsgi-worker) must answer exactly
// as Resident's own HTTP does: the same status, content type, challenge and body (request ids aside).
import path from 'node:path'
import { expect } from 'vitest'
import { startCli } from './cli.ts'

const ROOT = path.resolve(import.meta.dirname, '../..')

export const stripRequestId = (s: string) => s.replace(/"requestId":"[^"]*"/g, '"requestId":"…"')

/** Fetches each path from `gatewayUrl` and from a fresh `resident serve` of the examples, and compares. */
export async function expectSameAsResident(gatewayUrl: string, paths: string[]): Promise<void> {
  const direct = await startCli(['serve', '--port', '0'], { cwd: ROOT })
  try {
    for (const p of paths) {
      const [a, b] = await Promise.all([fetch(gatewayUrl + p), fetch(direct.url + p)])
      expect(a.status, p).toBe(b.status)
      expect(a.headers.get('content-type'), p).toBe(b.headers.get('content-type'))
      expect(a.headers.get('www-authenticate'), p).toBe(b.headers.get('www-authenticate'))
      expect(stripRequestId(await a.text()), p).toBe(stripRequestId(await b.text()))
    }
    const post = await fetch(`${gatewayUrl}/calc/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1,"b":41}' })
    expect(await post.json()).toEqual({ sum: 42 })
    const streamed = await fetch(`${gatewayUrl}/stream/?chunks=3&delay=10`)
    expect(await streamed.text()).toBe('chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n')
  } finally {
    direct.child.kill('SIGTERM')
    await direct.exited
  }
}
