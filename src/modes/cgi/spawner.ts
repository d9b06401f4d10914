import { Buffer } from 'node:buffer'
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { SpawnHelperLost, type LaunchSpec, type Program, type ProgramExit } from './launch.ts'
import { FRAME_BYTES, ID_LENGTH, type FromHelper, type ToHelper } from './spawn-protocol.ts'

/**
 * The server's side of the spawn helper (spawn-helper.ts): one helper per server process, started
 * with the first program and started again with the next one after it dies. The server listens on
 * a Unix socket in a private folder (0700, the socket 0600); the helper connects to it once per
 * program stream, so the program's stdout (and stdin, when there is a body) is a connection the
 * server reads and writes directly, without the helper in between. Programs the dead helper had
 * started are killed (their groups), and their requests fail with a SpawnHelperLost error.
 */
export function launchViaHelper(spec: LaunchSpec): Program {
  return (shared ??= new Spawner()).launch(spec)
}

let shared: Spawner | undefined

/** The built helper: dist/modes/cgi/spawn-helper.js beside this file, or under dist/ when running from src/. */
function helperScript(): string {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'spawn-helper.js')
  return path.resolve(path.dirname(here), '../../../dist/modes/cgi/spawn-helper.js')
}

class Spawner {
  readonly #dir = mkdtempSync(path.join(tmpdir(), 'resident-spawn-'))
  readonly #socket = path.join(this.#dir, 'spawn.sock')
  readonly #server = net.createServer((conn) => this.#accept(conn))
  readonly #listening: Promise<void>
  readonly #runs = new Map<string, HelperProgram>()
  #helper: ChildProcess | null = null

  constructor() {
    this.#server.unref()
    this.#listening = new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#socket, () => {
        chmodSync(this.#socket, 0o600)
        resolve()
      })
    })
    process.once('exit', () => rmSync(this.#dir, { recursive: true, force: true }))
  }

  launch(spec: LaunchSpec): Program {
    const id = randomBytes(ID_LENGTH / 2).toString('hex')
    const run = new HelperProgram(id, spec.stdin, (m) => this.#send(run, m))
    this.#runs.set(id, run)
    if (this.#runs.size === 1) this.#helper?.channel?.ref()
    run.once('error', () => this.#forget(id))
    run.once('close', () => this.#forget(id))
    // Every message of a run goes through #listening, so a kill never overtakes its run.
    this.#send(run, { t: 'run', id, program: spec.program, args: spec.args, env: spec.env, cwd: spec.cwd, stdin: spec.stdin })
    return run
  }

  #send(run: HelperProgram, m: ToHelper): void {
    this.#listening.then(() => {
      if (m.t === 'run') {
        let helper: ChildProcess
        try {
          helper = run.helper = this.#start()
        } catch (e) {
          run.lost(new SpawnHelperLost(`the spawn helper cannot start: ${(e as Error).message}`))
          return
        }
        helper.send(m, (e: Error | null) => {
          if (e === null || run.helper !== helper) return
          // Never delivered: the helper is dead, though its exit may not have been seen yet. The
          // run never started, so it is safe to hand to a new helper (once; after that its exit fails it).
          if (this.#helper === helper) {
            this.#helper = null
            helper.kill('SIGKILL')
          }
          if (!run.resent) {
            run.resent = true
            this.#send(run, m)
          }
        })
        return
      }
      // A kill for a run that is over, or whose helper is gone, has nothing left to reach.
      if (run.helper !== null && run.helper === this.#helper) run.helper.send(m, () => {})
    }, (e: Error) => run.lost(new SpawnHelperLost(`the spawn helper's socket cannot listen: ${e.message}`)))
  }

  #start(): ChildProcess {
    if (this.#helper !== null) return this.#helper
    const script = helperScript()
    if (!existsSync(script)) throw new Error(`${script} is missing (run npm run build)`)
    const helper = fork(script, [this.#socket], {
      // Nothing of the server's environment or flags: the helper needs none, and NODE_OPTIONS
      // could load code into it.
      env: {},
      // No V8 worker threads: a smaller process to fork for every program (about 0.1 ms of CPU a
      // program less, between the helper's fork and the child's exec). Its compiler and GC run on its
      // main thread then, which measured no slower for a process this small.
      execArgv: ['--single-threaded'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    })
    this.#helper = helper
    helper.on('message', (m: FromHelper) => this.#receive(m))
    helper.once('exit', (code, signal) => {
      if (this.#helper === helper) this.#helper = null
      const why = signal !== null ? `was killed by ${signal}` : `exited with ${code}`
      for (const run of [...this.#runs.values()]) {
        if (run.helper === helper) run.lost(new SpawnHelperLost(`the spawn helper ${why}`))
      }
    })
    helper.unref()
    if (this.#runs.size === 0) helper.channel?.unref()
    return helper
  }

  #receive(m: FromHelper): void {
    const run = this.#runs.get(m.id)
    if (run === undefined) return
    if (m.t === 'spawned') run.spawned(m.pid)
    else if (m.t === 'failed') run.failed(Object.assign(new Error(m.message), { code: m.code }))
    else run.exited({ code: m.code, signal: m.signal, stderr: m.stderr, stderrDropped: m.stderrDropped })
  }

  #forget(id: string): void {
    if (!this.#runs.delete(id)) return
    // An idle helper must not keep the server's process alive.
    if (this.#runs.size === 0) this.#helper?.channel?.unref()
  }

  /** A connection from the helper: the frame names its run and stream; anything else is closed. */
  #accept(conn: net.Socket): void {
    conn.on('error', () => {})
    let head: Buffer | null = null
    const timer = setTimeout(() => conn.destroy(), 10_000)
    timer.unref()
    const onData = (d: Buffer) => {
      head = head === null ? d : Buffer.concat([head, d])
      if (head.length < FRAME_BYTES) return
      conn.off('data', onData)
      conn.pause()
      clearTimeout(timer)
      const run = this.#runs.get(head.toString('latin1', 0, ID_LENGTH))
      const fd = head[ID_LENGTH]
      if (run === undefined || head[ID_LENGTH + 1] !== 0x0a || (fd !== 0x30 && fd !== 0x31)) { conn.destroy(); return }
      // The program may have written already: those bytes are its output.
      if (head.length > FRAME_BYTES) conn.unshift(head.subarray(FRAME_BYTES))
      run.attach(fd === 0x30 ? 0 : 1, conn)
    }
    conn.on('data', onData)
    conn.once('close', () => clearTimeout(timer))
  }
}

class HelperProgram extends EventEmitter implements Program {
  readonly stdin: PassThrough | null
  readonly stdout = new PassThrough()
  /** The helper this run was handed to. */
  helper: ChildProcess | null = null
  /** Handed to a second helper after the first was found dead before it got the run. */
  resent = false
  #pid: number | undefined
  #in: net.Socket | null = null
  #out: net.Socket | null = null
  #exit: ProgramExit | null = null
  #outClosed = false
  #over = false

  constructor(readonly id: string, stdin: boolean, private readonly send: (m: ToHelper) => void) {
    super()
    this.stdin = stdin ? new PassThrough() : null
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.#over) this.send({ t: 'kill', id: this.id, signal })
  }

  attach(fd: 0 | 1, conn: net.Socket): void {
    if (this.#over || (fd === 0 ? this.stdin === null || this.#in !== null : this.#out !== null)) { conn.destroy(); return }
    if (fd === 1) {
      this.#out = conn
      if (this.#pid !== undefined) this.#flow()
      return
    }
    this.#in = conn
    const stdin = this.stdin!
    // A program that does not read its body is no error: the rest of the body is dropped.
    conn.on('error', () => { stdin.unpipe(conn); stdin.resume() })
    conn.once('finish', () => conn.destroy())
    // Its EOF (the program closed its stdin) ends the connection.
    conn.resume()
    stdin.pipe(conn)
  }

  /** The output flows only once the program runs: if it could not start, its failure is the answer, not an empty stdout. */
  #flow(): void {
    const conn = this.#out!
    conn.once('close', () => {
      this.#outClosed = true
      if (!this.stdout.writableEnded) this.stdout.end()
      this.#maybeClose()
    })
    conn.pipe(this.stdout)
  }

  spawned(pid: number): void {
    this.#pid = pid
    this.emit('spawn', pid)
    if (this.#out !== null) this.#flow()
  }

  exited(exit: ProgramExit): void {
    this.#exit = exit
    this.#maybeClose()
  }

  #maybeClose(): void {
    if (this.#over || this.#exit === null || !this.#outClosed) return
    this.#over = true
    this.emit('close', this.#exit)
  }

  failed(e: Error): void {
    if (this.#over) return
    this.#over = true
    this.#drop()
    this.emit('error', e)
  }

  /** The helper died: a program it started is killed here, with its group. */
  lost(e: SpawnHelperLost): void {
    // A program that has exited lost nothing: the rest of its output is still in the socket.
    if (this.#over || this.#exit !== null) return
    this.#over = true
    const pid = this.#pid
    if (pid !== undefined) {
      try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
      e.message += ' while the program ran; its process group was killed'
    } else e.message += ' before the program started'
    this.#drop()
    this.emit('error', e)
    if (pid !== undefined) this.emit('close', { code: null, signal: 'SIGKILL', stderr: '', stderrDropped: 0 } satisfies ProgramExit)
  }

  #drop(): void {
    this.#in?.destroy()
    this.#out?.destroy()
    this.stdin?.resume()
  }
}
