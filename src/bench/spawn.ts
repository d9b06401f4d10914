// Starting and stopping the processes a bench target runs.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'

export interface Started { child: ChildProcess; match: RegExpExecArray }

/**
 * Spawns a program and resolves once a line of its output matches `ready` (or, with no pattern,
 * at once). Rejects, with what it printed, if it exits first or stays silent for `timeoutMs`.
 */
export function spawnUntil(command: string, args: string[], ready: RegExp | null, options: SpawnOptions = {}, timeoutMs = 15_000): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let out = ''
    let settled = false
    const fail = (why: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`${command} ${why}:\n${out.slice(-2000)}`))
    }
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs)
    const onData = (d: Buffer) => {
      if (settled) return
      out += d
      if (out.length > 100_000) out = out.slice(-50_000)
      const m = ready?.exec(out)
      if (m) {
        settled = true
        clearTimeout(timer)
        child.stdout?.removeAllListeners('data')
        child.stderr?.removeAllListeners('data')
        child.stdout?.resume()
        child.stderr?.resume()
        resolve({ child, match: m })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('error', (e) => fail(`could not start: ${e.message}`))
    child.once('exit', (code, signal) => fail(`exited (${signal ?? code}) before it was ready`))
    if (!ready) {
      settled = true
      clearTimeout(timer)
      resolve({ child, match: Object.assign([''], { index: 0, input: '' }) as RegExpExecArray })
    }
  })
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })
}

/** A free loopback TCP port (for peers that cannot report the port they bound). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** Resolves once a TCP port accepts connections. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Resolves once a file (a unix socket a server creates) exists; rejects after `timeoutMs`. */
export async function waitForFile(file: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Resolves once `url` answers 200; rejects if `child` exits first or after `timeoutMs`. */
export async function waitForHttp(url: string, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited (${child.signalCode ?? child.exitCode}) before it answered ${url}`)
    const ok = await fetch(url).then(async (r) => { await r.arrayBuffer(); return r.ok }, () => false)
    if (ok) return
    if (Date.now() > until) {
      child.kill('SIGKILL')
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}
