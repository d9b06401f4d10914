import type { ChildProcess } from 'node:child_process'

/**
 * What the server and its spawn helper (spawn-helper.ts) say to each other over the IPC channel.
 * The program's stdin and stdout never cross it: the helper connects to the server's private Unix
 * socket once per stream, names the stream in a frame (FRAME_BYTES: the run's id, `0` for stdin
 * or `1` for stdout, LF) and hands that connection to the program as its fd 0 or 1.
 */
export type ToHelper =
  | { t: 'run'; id: string; program: string; args: string[]; env: Record<string, string>; cwd: string; stdin: boolean }
  /** Signal the run's process group; it is killed again when its leader exits (children it left). */
  | { t: 'kill'; id: string; signal: NodeJS.Signals }

export type FromHelper =
  | { t: 'spawned'; id: string; pid: number }
  | { t: 'failed'; id: string; code: string; message: string }
  | { t: 'exit'; id: string; code: number | null; signal: NodeJS.Signals | null; stderr: string; stderrDropped: number }

/** Run ids: 32 hex digits from the server's CSPRNG, so a connection cannot guess its way to a request. */
export const ID_LENGTH = 32
export const FRAME_BYTES = ID_LENGTH + 2

/** How much of a program's stderr is kept for the log; the rest is counted. */
export const STDERR_KEEP = 8 * 1024

/** How a program ended: its exit, and the first STDERR_KEEP bytes of its stderr and how many more it wrote. */
export interface ProgramExit {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  stderrDropped: number
}

/**
 * Follows a started program (the server's own fork and the spawn helper both do): keeps the start
 * of its stderr; once it has exited and closed its output, tells `closed()`, which answers whether
 * the program was killed; if so what is left of its process group is killed too (the group
 * outlives its leader while a member is left, and its id cannot be reused until then); then
 * reports the exit.
 */
export function followProgram(child: ChildProcess, pid: number, closed: () => boolean, report: (exit: ProgramExit) => void): void {
  let stderr = ''
  let stderrDropped = 0
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < STDERR_KEEP) stderr += d.toString('utf8', 0, Math.min(d.length, STDERR_KEEP - stderr.length))
    else stderrDropped += d.length
  })
  child.once('close', (code, signal) => {
    if (closed()) try { process.kill(-pid, 'SIGKILL') } catch { /* no member left */ }
    report({ code, signal, stderr, stderrDropped })
  })
}
