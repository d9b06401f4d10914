import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from './helpers/cli.ts'

// Through the real `resident` binary: only a separate process can show the host surviving.
const RUDE = `import { Extension } from 'resident-host'
import realProcessSeen from 'seer'
import nodeProcess, { exit as namedExit } from 'node:process'
import * as processNamespace from 'process'
export default class Rude extends Extension {
  exit() { process.exit(3) }
  importedExit() { nodeProcess.exit(4) }
  namedExit() { namedExit(5) }
  namespaceExit() { processNamespace.exit(6) }
  requiredExit() { require('node:process').exit(7) }
  dynamicExit() { return import('node:process').then((m) => m.default.exit(8)) }
  builtinExit() { (process as any).getBuiltinModule('process').exit(9) }
  rawKill() { (process as any)._kill(process.pid, 9) }
  rawExit() { (process as any).reallyExit(10) }
  capture() { process.setUncaughtExceptionCaptureCallback(() => {}) }
  abort() { process.abort() }
  killSelf() { process.kill(process.pid, 'SIGKILL') }
  killGroup() { process.kill(0, 'SIGTERM') }
  chdir() { process.chdir('/') }
  setuid() { process.setuid(0) }
  setgid() { process.setgid(0) }
  umask() { process.umask(0) }
  exitCode() { process.exitCode = 9 }
  emitSigterm() { process.emit('SIGTERM') }
  removeAll() { process.removeAllListeners() }
  removeFaults() { process.removeAllListeners('uncaughtException') }
  reads() { return { pid: process.pid === globalThis.process.pid, env: typeof process.env.PATH, umask: typeof process.umask(), cwd: process.cwd() } }
  packages() { return { own: process.exit === globalThis.process.exit, pkg: realProcessSeen() } }
  moduleReads() { return { pid: nodeProcess.pid === globalThis.process.pid, cwd: processNamespace.cwd(), env: typeof processNamespace.env.PATH, hr: typeof nodeProcess.hrtime.bigint() } }
}`

describe('extension code sees a process it cannot end or reconfigure', () => {
  let dir: string
  let url: string
  let exited: Promise<number | null>
  let child: import('node:child_process').ChildProcess
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'resident-process-'))
    mkdirSync(path.join(dir, 'extensions'))
    mkdirSync(path.join(dir, 'filters'))
    mkdirSync(path.join(dir, 'node_modules', 'seer'), { recursive: true })
    writeFileSync(path.join(dir, 'node_modules', 'seer', 'package.json'), JSON.stringify({ name: 'seer', main: 'index.js' }))
    writeFileSync(path.join(dir, 'node_modules', 'seer', 'index.js'), 'module.exports = () => process.exit === globalThis.process.exit && typeof process.exit === "function"')
    writeFileSync(path.join(dir, 'extensions', 'rude.ts'), RUDE)
    const started = await startCli(['serve', '-p', '0', '-e', 'extensions', '-f', 'filters'], { cwd: dir, env: { NODE_ENV: 'development' } })
    url = started.url
    exited = started.exited
    child = started.child
  })
  afterAll(async () => {
    if (child.exitCode === null) { child.kill('SIGTERM'); await exited }
    rmSync(dir, { recursive: true, force: true })
  })

  it.each([
    ['exit', 'process.exit()'], ['abort', 'process.abort()'], ['killSelf', 'process.kill()'], ['killGroup', 'process.kill()'],
    ['chdir', 'process.chdir()'], ['setuid', 'process.setuid()'], ['setgid', 'process.setgid()'], ['umask', 'process.umask(mask)'],
    ['exitCode', 'process.exitCode'], ['emitSigterm', "process.emit('SIGTERM')"], ['removeAll', 'process.removeAllListeners()'],
    ['removeFaults', 'process.removeAllListeners()'],
    // The same process reached through its module, as code that prefers \`import process from 'node:process'\` does.
    ['importedExit', 'process.exit()'], ['namedExit', 'process.exit()'], ['namespaceExit', 'process.exit()'],
    ['requiredExit', 'process.exit()'], ['dynamicExit', 'process.exit()'], ['builtinExit', 'process.exit()'],
    ['rawKill', 'process._kill()'], ['rawExit', 'process.reallyExit()'],
    ['capture', 'process.setUncaughtExceptionCaptureCallback()'],
  ])('%s throws a clear error and the host keeps serving', async (command, call) => {
    const r = await fetch(`${url}/rude/${command}`)
    expect(r.status).toBe(500)
    const body = await r.json() as { error: { message: string; requestId: string } }
    expect(body.error.message).toContain(call)
    expect(body.error.message).toContain('not available to extension code')
    expect((await fetch(`${url}/rude/reads`)).status).toBe(200)
    expect(child.exitCode).toBeNull()
  })

  it('reads work as usual; packages it imports get the real process', async () => {
    const reads = await (await fetch(`${url}/rude/reads`)).json()
    expect(reads).toEqual({ pid: true, env: 'string', umask: 'number', cwd: dir })
    expect(await (await fetch(`${url}/rude/packages`)).json()).toEqual({ own: false, pkg: true })
    expect(await (await fetch(`${url}/rude/moduleReads`)).json()).toEqual({ pid: true, cwd: dir, env: 'string', hr: 'bigint' })
  })

  it('stops with exit code 0 on SIGTERM afterwards (nothing changed the exit code)', async () => {
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
