import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { followProgram, type FromHelper, type ToHelper } from './spawn-protocol.ts'

/**
 * The spawn helper: a small long-lived process that starts CGI programs for the server, so the
 * server's event loop never forks. libuv's spawn forks the calling process and waits until the
 * child has called exec; in a server with a large heap that blocks every other request for
 * milliseconds (more when the child must wait for a CPU), here it costs a process of a few MB.
 *
 * Per run it connects to the server's socket (argv[2]) for the program's stdout, and for its stdin
 * when there is a body; writes the frame naming each; starts the program in a session of its own
 * with those connections as fd 1 and 0 (no body: /dev/null), and closes its own copies. It relays
 * the pid, the exit status and the first STDERR_KEEP bytes of stderr, and signals process groups
 * on request. If the server goes away, every group still running is killed and the helper exits.
 */

const socketPath = process.argv[2]
if (socketPath === undefined || typeof process.send !== 'function') {
  process.stderr.write('resident spawn helper: started without its server\n')
  process.exit(2)
}
process.title = 'resident-spawn-helper'
// The server decides when programs end: a Ctrl-C or a SIGTERM to the whole process group reaches
// the server, which drains and signals its programs itself; the helper ends when the server does.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {})

interface Run {
  child: ChildProcess | null
  /** Set by a kill before the program started: it never starts. */
  cancelled: boolean
  /** Killed at least once: members of the group still there when the leader exits are killed too. */
  doomed: boolean
  exited: boolean
}
const runs = new Map<string, Run>()

const send = (m: FromHelper): void => {
  // A send racing the server's exit fails with EPIPE: the callback takes the error (the
  // disconnect handler then ends the helper).
  if (process.connected) process.send!(m, undefined, {}, () => {})
}

function connect(id: string, fd: 0 | 1): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath!)
    // Never read from it: what the server writes for the program's stdin must stay in the socket.
    s.pause()
    s.once('error', reject)
    s.once('connect', () => s.write(`${id}${fd}\n`, (e) => {
      if (e) { reject(e); return }
      s.off('error', reject)
      s.on('error', () => {})
      resolve(s)
    }))
  })
}

async function run(m: Extract<ToHelper, { t: 'run' }>): Promise<void> {
  const r: Run = { child: null, cancelled: false, doomed: false, exited: false }
  runs.set(m.id, r)
  const socks: net.Socket[] = []
  const failed = (code: string, message: string) => {
    for (const s of socks) s.destroy()
    runs.delete(m.id)
    send({ t: 'failed', id: m.id, code, message })
  }
  let stdout: net.Socket, stdin: net.Socket | null
  try {
    [stdout, stdin] = await Promise.all([connect(m.id, 1), m.stdin ? connect(m.id, 0) : null])
    socks.push(stdout)
    if (stdin !== null) socks.push(stdin)
  } catch (e) {
    failed((e as NodeJS.ErrnoException).code ?? 'ECONNREFUSED', `cannot reach the server: ${(e as Error).message}`)
    return
  }
  if (r.cancelled) { failed('ECANCELED', 'cancelled before it started'); return }
  let child: ChildProcess
  try {
    child = spawn(m.program, m.args, {
      cwd: m.cwd,
      env: m.env,
      // A new session and process group: -pid reaches every process it starts.
      detached: true,
      stdio: [stdin ?? 'ignore', stdout, 'pipe'],
      windowsHide: true,
    })
  } catch (e) {
    failed((e as NodeJS.ErrnoException).code ?? 'EINVAL', (e as Error).message)
    return
  }
  // The program holds the connections now; the server sees EOF when it (and its children) close them.
  for (const s of socks) s.destroy()
  const pid = child.pid
  if (pid === undefined) {
    // A failed exec (ENOENT, EACCES) is reported as an 'error' event.
    child.once('error', (e: NodeJS.ErrnoException) => failed(e.code ?? 'ENOEXEC', e.message))
    return
  }
  r.child = child
  child.on('error', () => { /* a failed kill: the group is gone */ })
  send({ t: 'spawned', id: m.id, pid })
  followProgram(child, pid, () => { r.exited = true; runs.delete(m.id); return r.doomed }, (exit) => send({ t: 'exit', id: m.id, ...exit }))
}

function kill(m: Extract<ToHelper, { t: 'kill' }>): void {
  const r = runs.get(m.id)
  if (r === undefined) return
  r.doomed = true
  if (r.child === null) { r.cancelled = true; return }
  if (!r.exited) try { process.kill(-r.child.pid!, m.signal) } catch { /* already gone */ }
}

process.on('message', (m: ToHelper) => {
  if (m.t === 'run') void run(m)
  else if (m.t === 'kill') kill(m)
})

// The server is gone (a stop, a crash, SIGKILL): nothing would end its programs now.
process.on('disconnect', () => {
  for (const r of runs.values()) if (r.child?.pid !== undefined && !r.exited) try { process.kill(-r.child.pid, 'SIGKILL') } catch { /* gone */ }
  process.exit(0)
})
