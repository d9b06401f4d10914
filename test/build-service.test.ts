import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from './helpers/watch.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

// esbuild's service is a child process of the host (a Go binary, ≈ 12 MB RSS, and a ping to the
// host every second). It stops once no build has run for unload.esbuildIdle, and the next load
// starts it again.
/** How many esbuild service processes are children of this one (/proc where there is one, else ps). */
const esbuildChildren = (): number => {
  if (existsSync('/proc/self/stat')) {
    let n = 0
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let stat: string
      try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { continue } // gone meanwhile
      // pid (comm) state ppid …: comm may hold spaces, so read past its closing parenthesis.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(ppid) === process.pid && state !== 'Z' && stat.includes('(esbuild)')) n++
    }
    return n
  }
  const out = execFileSync('ps', ['-A', '-o', 'ppid=,args='], { encoding: 'utf8' })
  return out.split('\n').filter((l) => Number(l.trim().split(/\s+/)[0]) === process.pid && /esbuild.*--service/.test(l)).length
}

const ext = (v: number) => `import { Extension } from 'resident-host'
export default class E extends Extension { v() { return { v: ${v} } } }`

let t: TestServer | null = null
afterEach(async () => { await t?.close(); t = null })

describe('the esbuild service', () => {
  it('stops after unload.esbuildIdle without a build, and starts again for the next load', async () => {
    t = await startTestServer({ config: { unload: { esbuildIdle: '150ms' } }, extensions: { 'a.ts': ext(1), 'b.ts': ext(2) } })
    expect((await t.inject('/a/v')).json()).toEqual({ v: 1 })
    expect(esbuildChildren()).toBe(1)
    await until(() => esbuildChildren() === 0, 'the service stopped')
    expect((await t.inject('/b/v')).json()).toEqual({ v: 2 })
    expect(esbuildChildren()).toBe(1)
    t.writeExtension('a.ts', ext(3))
    await t.server.registry.reload('a')
    expect((await t.inject('/a/v')).json()).toEqual({ v: 3 })
    await until(() => esbuildChildren() === 0, 'stopped again')
  })

  it('keeps running with esbuildIdle 0', async () => {
    t = await startTestServer({ config: { unload: { esbuildIdle: 0 } }, extensions: { 'a.ts': ext(1) } })
    expect((await t.inject('/a/v')).json()).toEqual({ v: 1 })
    await new Promise((r) => setTimeout(r, 300))
    expect(esbuildChildren()).toBe(1)
  })

  it('rejects a bad esbuildIdle', async () => {
    await expect(startTestServer({ config: { unload: { esbuildIdle: 'soon' } } })).rejects.toThrow(/unload\.esbuildIdle/)
  })
})
