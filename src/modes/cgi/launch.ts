import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { PassThrough, type Readable, type Writable } from 'node:stream'
import { followProgram, type ProgramExit } from './spawn-protocol.ts'

export type { ProgramExit } from './spawn-protocol.ts'

/** What starts a CGI program: the server's own fork ('direct') or the spawn helper ('helper'). */
export type SpawnWay = 'helper' | 'direct'

export interface LaunchSpec {
  program: string
  args: string[]
  env: Record<string, string>
  cwd: string
  /** Whether the program gets a stdin to read its body from; without, it reads /dev/null. */
  stdin: boolean
}

/**
 * A CGI program started in a session (and process group) of its own. Events: 'spawn' (pid) once
 * it runs; 'error' (Error) if it could not start, or was lost with the spawn helper; 'close'
 * (ProgramExit) once it has exited and its stdout is closed. kill() signals the whole group, and
 * marks it doomed: members still in the group when the program exits are killed then.
 */
export interface Program extends EventEmitter {
  readonly stdin: Writable | null
  readonly stdout: Readable
  kill(signal: NodeJS.Signals): void
}

/** The helper died: the program never started, or its process group was killed. */
export class SpawnHelperLost extends Error {}

/** The server forks the program itself: its event loop waits until the child has exec'd. */
export function launchDirect(spec: LaunchSpec): Program {
  return new DirectProgram(spec)
}

class DirectProgram extends EventEmitter implements Program {
  readonly stdin: Writable | null
  readonly stdout: Readable
  #pid: number | undefined
  #doomed = false
  #exited = false

  constructor(spec: LaunchSpec) {
    super()
    let child
    try {
      child = spawn(spec.program, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        // A new session and process group: -pid reaches every process it starts.
        detached: true,
        stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        windowsHide: true,
      })
    } catch (e) {
      this.stdin = null
      this.stdout = new PassThrough()
      process.nextTick(() => this.emit('error', e))
      return
    }
    this.stdin = child.stdin
    this.stdout = child.stdout!
    const pid = this.#pid = child.pid
    if (pid === undefined) {
      child.once('error', (e) => this.emit('error', e))
      return
    }
    child.on('error', () => { /* a failed kill: the group is gone */ })
    child.once('spawn', () => this.emit('spawn', pid))
    followProgram(child, pid, () => { this.#exited = true; return this.#doomed }, (exit: ProgramExit) => this.emit('close', exit))
  }

  kill(signal: NodeJS.Signals): void {
    this.#doomed = true
    if (this.#exited || this.#pid === undefined) return
    try { process.kill(-this.#pid, signal) } catch { /* already gone */ }
  }
}
