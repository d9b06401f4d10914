import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'
import { connect, get } from './helpers/raw.ts'

const ROOT = path.resolve(import.meta.dirname, '..')
const MB = 1024 * 1024

/** The server process's resident set, from /proc (the server's own, not the test runner's). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m![1]) * 1024
}

// Finding 1 of the fuzzing campaign: 8 connections, each a slow stream followed by 20 pipelined
// POSTs of 1 MB of nested-array JSON, took the heap from 589 MB to 4.1 GB in 10 s and killed the
// process. Run against `resident serve` on the examples, with their config (memory.budget 512MB).
describe.skipIf(process.platform !== 'linux')('a flood of pipelined JSON behind slow streams', () => {
  let server: Awaited<ReturnType<typeof startCli>>
  beforeAll(async () => {
    server = await startCli(['serve', '--port', '0'], { cwd: ROOT })
  })
  afterAll(async () => {
    server.child.kill('SIGTERM')
    await server.exited
  })

  it('leaves the host serving, with its RSS under the memory budget, during and after', async () => {
    const budget = 512 * MB
    const url = server.url
    const pid = server.child.pid!
    await fetch(`${url}/counter/increment`)
    const before = await (await fetch(`${url}/counter/value`)).json()
    // Wide and deep: both shapes of "1 MB of nested arrays".
    const wide = `[${Array(Math.floor(MB / 3)).fill('[]').join(',')}]`
    const deep = '['.repeat(MB / 2) + ']'.repeat(MB / 2)
    const post = (body: string) => `POST /stream/?chunks=100&delay=5000 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    const sockets: Socket[] = []
    let peak = rss(pid)
    const sampler = setInterval(() => { try { peak = Math.max(peak, rss(pid)) } catch { /* exited */ } }, 100)
    try {
      await Promise.all(Array.from({ length: 8 }, async (_, c) => {
        const s = await connect(url)
        sockets.push(s)
        s.on('error', () => {})
        s.on('data', () => {})
        s.write(get('/stream/?chunks=100&delay=5000'))
        for (let i = 0; i < 20; i++) s.write(post(c % 2 === 0 ? wide : deep))
      }))
      await new Promise((r) => setTimeout(r, 4000))
      // Still serving, and serving others, while the flood is held.
      const hello = await fetch(`${url}/hello/greet?name=x`)
      expect(hello.status).toBe(200)
      const status = await (await fetch(`${url}/_resident/status`)).json() as { extensions: Array<{ name: string; requests: { inFlight: number } }> }
      const stream = status.extensions.find((e) => e.name === 'stream')
      expect(stream!.requests.inFlight).toBeLessThanOrEqual(8 * 8)
      expect(peak).toBeLessThan(budget)
    } finally {
      for (const s of sockets) s.destroy()
    }
    // The client hung up: every lease ends and the memory comes back under the budget.
    await expect.poll(async () => {
      const status = await (await fetch(`${url}/_resident/status`)).json() as { extensions: Array<{ name: string; requests: { inFlight: number } }> }
      return status.extensions.reduce((n, e) => n + e.requests.inFlight, 0)
    }, { timeout: 10_000 }).toBe(0)
    clearInterval(sampler)
    expect(rss(pid)).toBeLessThan(budget)
    expect(peak).toBeLessThan(budget)
    // Memory pressure never evicted another extension's state.
    expect(await (await fetch(`${url}/counter/value`)).json()).toEqual(before)
    console.log(`flood: peak RSS ${Math.round(peak / MB)} MB, after ${Math.round(rss(pid) / MB)} MB (budget ${budget / MB} MB)`)
  }, 60_000)
})
