import { spawn, type ChildProcess } from 'node:child_process'
import { BIN } from './cli.ts'

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

export interface Worker { child: ChildProcess; address: string; output: () => string; exited: Promise<number | null> }

/** Starts `resident fcgi-worker …` (or `uwsgi-worker`) and resolves once it says where it listens. */
export function startWorker(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; command?: 'fcgi-worker' | 'uwsgi-worker' } = {}): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, o.command ?? 'fcgi-worker', ...args], { cwd: o.cwd, env: { ...process.env, ...o.env } })
    children.add(child)
    let out = ''
    const exited = new Promise<number | null>((r) => child.on('close', (code) => { children.delete(child); r(code) }))
    const onData = (d: Buffer) => {
      out += d
      const m = /(?:fcgi|uwsgi)-worker listening on ([^\s"\\]+)/.exec(out)
      if (m) resolve({ child, address: m[1]!, output: () => out, exited })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => reject(new Error(`${o.command ?? 'fcgi-worker'} exited with ${code} before listening:\n${out}`)))
  })
}
