import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import path from 'node:path'

export const BIN = path.resolve(import.meta.dirname, '../../bin/resident.js')

// A failed test must not leave a server running after the test process ends.
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })
function track<T extends ChildProcess>(child: T): T {
  children.add(child)
  child.on('close', () => children.delete(child))
  return child
}

export interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `resident <args>` to completion. */
export function runCli(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = track(spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, env: { ...process.env, ...o.env } }))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Starts `resident serve …` and resolves with its URL once it listens. */
export function startCli(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ child: ChildProcess; url: string; output: () => string; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, env: { ...process.env, ...o.env } }))
    let out = ''
    const exited = new Promise<number | null>((r) => child.on('close', r))
    const onData = (d: Buffer) => {
      out += d
      const m = /Resident listening on (http:\/\/[^\s"\\]+)/.exec(out)
      if (m) resolve({ child, url: m[1]!, output: () => out, exited })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => reject(new Error(`resident exited with ${code} before listening:\n${out}`)))
  })
}

/** A `resident` process started in a project folder of its own, its output kept. */
export interface ProjectProcess { child: ChildProcess; out: string[]; dir: string; text: () => string; url: () => string | null }

/**
 * Starts `resident <args>` in `dir` (which it then owns: stopProjectProcesses removes it), with
 * its output kept and its URL read from the banner once it listens.
 */
export function spawnInProject(procs: ProjectProcess[], dir: string, args: string[], env: NodeJS.ProcessEnv = {}): ProjectProcess {
  const child = track(spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: '', ...env } }))
  const out: string[] = []
  child.stdout!.on('data', (d) => out.push(String(d)))
  child.stderr!.on('data', (d) => out.push(String(d)))
  const text = () => out.join('')
  const p: ProjectProcess = { child, out, dir, text, url: () => /listening on (http:\/\/[\w.:[\]]+)/.exec(text())?.[1] ?? null }
  procs.push(p)
  return p
}

/** Stops (SIGTERM, waiting for the exit) every process spawnInProject started, and removes its folder. */
export async function stopProjectProcesses(procs: ProjectProcess[]): Promise<void> {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null) {
      const exited = new Promise((r) => p.child.once('exit', r))
      p.child.kill('SIGTERM')
      await exited
    }
    rmSync(p.dir, { recursive: true, force: true })
  }
}
