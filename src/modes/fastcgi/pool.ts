import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { text } from 'node:stream/consumers'
import type { Logger as PinoLogger } from 'pino'
import type { PoolSettings } from '../../config/types.ts'
import { FcgiClient, FcgiClientError, getValues, type FcgiRequest, type FcgiResponse } from './client.ts'
import { cpuMs, rssBytes } from '../proc.ts'

export type { PoolSettings, ProcessManager } from '../../config/types.ts'
export { POOL_DEFAULTS } from '../../config/defaults.ts'

export type WorkerState = 'Starting' | 'Idle' | 'Running' | 'Finishing'

export interface Worker {
  id: number
  child: ChildProcess
  pid: number
  socket: string
  client: FcgiClient | null
  state: WorkerState
  /** Part of a pool generation that was reloaded: takes no new request. */
  retiring: boolean
  started: number
  idleSince: number
  requests: number
  current: { method: string; uri: string; started: number; contentLength: number; cpu: number } | null
  last: { method: string; uri: string; duration: number; contentLength: number; cpu: number; memory: number } | null
  /** Why the pool killed it, so its request's failure is reported as that. */
  killedFor: 'timeout' | 'hung' | null
  ready: Promise<void>
}

interface Waiter { resolve: (w: Worker) => void; reject: (e: Error) => void; signal?: AbortSignal; onAbort?: () => void }

export class PoolError extends Error {
  override name = 'PoolError'
  constructor(readonly kind: 'timeout' | 'crashed' | 'closed' | 'failed', message: string, options?: { cause?: unknown }) { super(message, options) }
}

const BIN = path.resolve(import.meta.dirname, '../../../bin/resident.js')

export interface PoolOptions {
  name: string
  settings: PoolSettings
  /** Arguments after `resident fcgi-worker --listen …`. */
  workerArgs: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  log: PinoLogger
}

/**
 * A process manager for `resident fcgi-worker`s, after PHP-FPM: static, dynamic or ondemand
 * pools up to maxChildren, one request per worker at a time, each worker on a unix socket of its
 * own so the manager always knows which worker runs which request. It recycles workers after
 * maxRequests, kills one whose request passes terminateTimeout (that request answers 504),
 * respawns crashed ones (their request answers 502) and restarts the whole pool when crashes pass
 * the emergency threshold. A worker whose request was abandoned (deadline, client gone) takes no
 * new request until it answers a GET_VALUES; one that does not within hangGrace is hung (a
 * command spinning), and is killed and replaced. A reload drains every worker: old workers finish what they run and
 * exit, new ones take the new requests.
 */
export class ProcessPool {
  readonly #o: PoolOptions
  readonly #s: PoolSettings
  readonly #dir: string
  readonly #workers = new Set<Worker>()
  readonly #queue: Waiter[] = []
  #next = 1
  #closed = false
  #crashes: number[] = []
  #timer: NodeJS.Timeout | null = null
  /** Workers that died before they listened, in a row: spawning backs off, queued requests fail. */
  #startFailures = 0
  #spawnAfter = 0
  readonly started = Date.now()
  acceptedConn = 0
  maxListenQueue = 0
  maxActive = 0
  maxChildrenReached = 0
  slowRequests = 0
  respawns = 0
  hangs = 0

  /** How often the maintenance pass runs (ms). */
  readonly #interval: number

  constructor(o: PoolOptions) {
    this.#o = o
    this.#s = o.settings
    this.#interval = Math.min(1000, Math.max(50, this.#s.processIdleTimeout / 4))
    this.#dir = mkdtempSync(path.join(tmpdir(), `resident-pool-${o.name}-`))
  }

  async start(): Promise<void> {
    const n = this.#s.pm === 'static' ? this.#s.maxChildren : this.#s.pm === 'dynamic' ? this.#s.startServers : 0
    const spawned = Array.from({ length: n }, () => this.#spawn())
    await Promise.all(spawned.map((w) => w.ready))
    if (n > 0 && this.#startFailures > 0 && this.#live().length === 0) {
      await this.close()
      throw new PoolError('failed', `the ${this.#o.name} pool's workers exit before they listen; see the log`)
    }
    this.#timer = setInterval(() => this.#maintain(), this.#interval)
    this.#timer.unref()
  }

  get workers(): readonly Worker[] { return [...this.#workers] }

  #live(): Worker[] { return [...this.#workers].filter((w) => !w.retiring) }

  #spawn(): Worker {
    const id = this.#next++
    const socket = path.join(this.#dir, `w${id}.sock`)
    const child = spawn(process.execPath, [BIN, 'fcgi-worker', '--listen', `unix:${socket}`, ...this.#o.workerArgs], {
      cwd: this.#o.cwd, env: { ...process.env, ...this.#o.env }, stdio: ['ignore', 'ignore', 'pipe'],
    })
    const w: Worker = {
      id, child, pid: child.pid ?? 0, socket, client: null, state: 'Starting', retiring: false, started: Date.now(), idleSince: Date.now(),
      requests: 0, current: null, last: null, killedFor: null, ready: Promise.resolve(),
    }
    this.#workers.add(w)
    let out = ''
    w.ready = new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        if (w.state === 'Starting') {
          out += d
          if (out.includes('fcgi-worker listening on')) {
            out = ''
            this.#startFailures = 0
            w.client = new FcgiClient({ addresses: [`unix:${socket}`], maxConns: 1 })
            w.state = 'Idle'
            w.idleSince = Date.now()
            resolve()
            this.#dispatch()
          }
          return
        }
        // A worker's own log lines (JSON from pino) go to the pool's log as they are.
        for (const line of String(d).split('\n')) if (line.trim()) this.#o.log.info({ pool: this.#o.name, pid: w.pid }, line.length > 2000 ? line.slice(0, 2000) : line)
      })
      child.once('exit', () => resolve())
    })
    child.once('exit', (code, signal) => this.#onExit(w, code, signal, out))
    return w
  }

  #onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null, startOutput: string): void {
    this.#workers.delete(w)
    w.client?.close()
    rmSync(w.socket, { force: true })
    if (this.#closed) return
    const planned = w.retiring || w.state === 'Finishing' || w.killedFor !== null
    if (w.state === 'Starting' && !planned) {
      this.#startFailures++
      const wait = Math.min(30_000, 250 * 2 ** Math.min(this.#startFailures, 7))
      this.#spawnAfter = Date.now() + wait
      const e = new PoolError('failed', `fcgi-worker ${w.pid} exited before it listened (${signal ?? `code ${code}`}): ${startOutput.trim().split('\n').slice(-3).join(' | ') || 'no output'}`)
      this.#o.log.error({ pool: this.#o.name, pid: w.pid, retryIn: wait }, e.message)
      for (const q of this.#queue.splice(0)) q.reject(e)
      return
    }
    if (!planned) {
      this.#o.log.error({ pool: this.#o.name, pid: w.pid, code, signal, output: startOutput.slice(-2000) || undefined },
        `fcgi-worker ${w.pid} exited unexpectedly (${signal ?? `code ${code}`})${w.current ? ` while serving ${w.current.method} ${w.current.uri}` : ''}`)
      const now = Date.now()
      this.#crashes = this.#crashes.filter((t) => now - t < this.#s.emergencyRestartInterval)
      this.#crashes.push(now)
      if (this.#s.emergencyRestartThreshold > 0 && this.#crashes.length >= this.#s.emergencyRestartThreshold) {
        this.#o.log.error({ pool: this.#o.name }, `failed processes threshold (${this.#crashes.length} in ${this.#s.emergencyRestartInterval / 1000} sec) is reached, initiating reload`)
        this.#crashes = []
        void this.reload()
      }
      this.respawns++
    }
    this.#balance()
    this.#dispatch()
  }

  /**
   * Keeps the pool the shape its pm asks for. Spawning happens at once, whenever it is called;
   * stopping a surplus spare only in the maintenance pass (`trim`).
   */
  #balance(trim = false): void {
    if (this.#closed || Date.now() < this.#spawnAfter) return
    const live = this.#live()
    const s = this.#s
    if (s.pm === 'static') {
      for (let i = live.length; i < s.maxChildren; i++) this.#spawn()
      return
    }
    if (s.pm === 'dynamic') {
      const idle = live.filter((w) => w.state === 'Idle' || w.state === 'Starting').length
      const want = Math.min(s.minSpareServers - idle, s.maxChildren - live.length)
      for (let i = 0; i < want; i++) this.#spawn()
      if (trim && idle > s.maxSpareServers) {
        // PHP-FPM stops one surplus idle worker per maintenance pass; so does this, and only one
        // that stayed idle through a whole pass. Trimming whenever a request ends would stop a
        // worker each time the load dips between two requests and start another for the next one:
        // a Node start-up (hundreds of ms of CPU) per request under a steady load.
        const now = Date.now()
        const surplus = live.filter((w) => w.state === 'Idle' && now - w.idleSince >= this.#interval).sort((a, b) => a.idleSince - b.idleSince)[0]
        if (surplus) this.#stop(surplus)
      }
    }
  }

  #maintain(): void {
    if (this.#closed) return
    const now = Date.now()
    if (this.#s.pm === 'ondemand') {
      for (const w of this.#live()) if (w.state === 'Idle' && now - w.idleSince >= this.#s.processIdleTimeout) this.#stop(w)
    }
    this.#balance(true)
  }

  /** Stops a worker gracefully: it finishes what it runs, then exits 0. */
  #stop(w: Worker): void {
    if (w.state === 'Finishing') return
    w.state = 'Finishing'
    w.child.kill('SIGTERM')
  }

  #idle(): Worker | undefined {
    for (const w of this.#workers) if (!w.retiring && w.state === 'Idle') return w
    return undefined
  }

  /** Hands idle workers to waiting requests; spawns when the pool may grow. */
  #dispatch(): void {
    while (this.#queue.length > 0) {
      const w = this.#idle()
      if (w === undefined) break
      const q = this.#queue.shift()!
      if (q.onAbort) q.signal?.removeEventListener('abort', q.onAbort)
      w.state = 'Running'
      q.resolve(w)
    }
    if (this.#queue.length === 0 || this.#closed) return
    if (Date.now() < this.#spawnAfter) {
      const e = new PoolError('failed', `the ${this.#o.name} pool's workers fail to start; the next try is in ${Math.ceil((this.#spawnAfter - Date.now()) / 1000)} s`)
      for (const q of this.#queue.splice(0)) q.reject(e)
      return
    }
    const live = this.#live()
    const starting = live.filter((w) => w.state === 'Starting').length
    if (this.#s.pm !== 'static' && live.length < this.#s.maxChildren && starting < this.#queue.length) {
      for (let i = 0; i < Math.min(this.#queue.length - starting, this.#s.maxChildren - live.length); i++) this.#spawn()
    } else if (live.length >= this.#s.maxChildren) {
      this.maxChildrenReached++
    }
  }

  #acquire(signal?: AbortSignal): Promise<Worker> {
    if (this.#closed) return Promise.reject(new PoolError('closed', `the ${this.#o.name} pool is closed`))
    const w = this.#idle()
    if (w !== undefined && this.#queue.length === 0) {
      w.state = 'Running'
      // A dynamic pool spawns spares as soon as its idle ones get busy, not at the next pass.
      this.#balance()
      return Promise.resolve(w)
    }
    return new Promise<Worker>((resolve, reject) => {
      const entry: Waiter = { resolve, reject, signal }
      if (signal) {
        entry.onAbort = () => {
          const i = this.#queue.indexOf(entry)
          if (i >= 0) this.#queue.splice(i, 1)
          reject(signal.reason as Error)
        }
        signal.addEventListener('abort', entry.onAbort, { once: true })
      }
      this.#queue.push(entry)
      this.maxListenQueue = Math.max(this.maxListenQueue, this.#queue.length)
      this.#dispatch()
    })
  }

  /** Runs one FastCGI request on an idle worker (waiting for one when all are busy). */
  async request(req: FcgiRequest & { method: string; uri: string; contentLength?: number }): Promise<FcgiResponse> {
    const w = await this.#acquire(req.signal)
    this.acceptedConn++
    w.current = { method: req.method, uri: req.uri, started: Date.now(), contentLength: req.contentLength ?? 0, cpu: cpuMs(w.pid) }
    const active = [...this.#workers].filter((x) => x.state === 'Running').length
    this.maxActive = Math.max(this.maxActive, active)
    let slow: NodeJS.Timeout | undefined
    let kill: NodeJS.Timeout | undefined
    if (this.#s.slowlogTimeout > 0) {
      slow = setTimeout(() => {
        this.slowRequests++
        this.#o.log.warn({ pool: this.#o.name, pid: w.pid, method: req.method, uri: req.uri, seconds: this.#s.slowlogTimeout / 1000 },
          `slow request: ${req.method} ${req.uri} on worker ${w.pid} has run ${this.#s.slowlogTimeout} ms`)
      }, this.#s.slowlogTimeout)
    }
    if (this.#s.terminateTimeout > 0) {
      kill = setTimeout(() => {
        w.killedFor = 'timeout'
        this.#o.log.warn({ pool: this.#o.name, pid: w.pid, uri: req.uri }, `request ${req.method} ${req.uri} on worker ${w.pid} passed terminateTimeout (${this.#s.terminateTimeout} ms): killing the worker`)
        w.child.kill('SIGKILL')
      }, this.#s.terminateTimeout)
    }
    let ended = false
    const done = () => {
      clearTimeout(slow)
      clearTimeout(kill)
      // Closed before END_REQUEST because the caller gave up: the command may still be running.
      const abandoned = !ended && req.signal?.aborted === true
      const c = w.current
      if (c) {
        w.last = { method: c.method, uri: c.uri, duration: Date.now() - c.started, contentLength: c.contentLength, cpu: cpuMs(w.pid) - c.cpu, memory: rssBytes(w.pid) }
        w.current = null
      }
      w.requests++
      if (!this.#workers.has(w) || w.state !== 'Running') return
      if (abandoned) { void this.#checkAlive(w).then((alive) => { if (alive) this.#free(w) }); return }
      this.#free(w)
    }
    let res: FcgiResponse
    try {
      res = await w.client!.request(req)
    } catch (e) {
      done()
      if (w.killedFor === 'timeout') throw new PoolError('timeout', `the request passed terminateTimeout (${this.#s.terminateTimeout} ms); its worker was killed`, { cause: e })
      if (e instanceof FcgiClientError && (e.kind === 'closed' || e.kind === 'unreachable')) throw new PoolError('crashed', `the worker serving the request exited: ${e.message}`, { cause: e })
      throw e
    }
    res.body.once('end', () => { ended = true; done() })
    res.body.once('close', () => { if (w.current) done() })
    res.body.once('error', (e) => {
      if (w.killedFor === 'timeout') this.#o.log.warn({ err: e }, 'a response was cut off when its worker was killed')
    })
    return res
  }

  /** A worker whose request is over: idle again, or stopped when it is retiring or at maxRequests. */
  #free(w: Worker): void {
    if (!this.#workers.has(w) || w.state !== 'Running') return
    if (w.retiring || (this.#s.maxRequests > 0 && w.requests >= this.#s.maxRequests)) {
      this.#stop(w)
      this.#balance()
    } else {
      w.state = 'Idle'
      w.idleSince = Date.now()
    }
    this.#dispatch()
    this.#balance()
  }

  /**
   * Whether a worker's event loop still turns after its request was abandoned: it must answer a
   * GET_VALUES on a fresh connection within hangGrace. One that does not is killed and replaced
   * (it stays Running meanwhile, so no request is sent to it).
   */
  async #checkAlive(w: Worker): Promise<boolean> {
    const socket = net.connect(w.socket)
    socket.on('error', () => {})
    const answer = await getValues(socket, this.#s.hangGrace)
    if (answer !== null || !this.#workers.has(w)) return answer !== null
    this.hangs++
    w.killedFor = 'hung'
    this.#o.log.error({ pool: this.#o.name, pid: w.pid, graceMs: this.#s.hangGrace },
      `fcgi-worker ${w.pid} did not answer within ${this.#s.hangGrace} ms after its request was abandoned; killing it as hung`)
    w.child.kill('SIGKILL')
    return false
  }

  /**
   * Sends a management request (no client's: the fastcgi mode's unload and canUnload) to every
   * idle worker, each taken out of service while it answers; resolves with their answers, parsed.
   * A worker that is starting has loaded nothing yet; one that is running is left alone.
   */
  async each(params: Array<[string, string]>): Promise<unknown[]> {
    const idle = [...this.#workers].filter((w) => !w.retiring && w.state === 'Idle')
    return Promise.all(idle.map(async (w) => {
      w.state = 'Running'
      try {
        const res = await w.client!.request({ params })
        return JSON.parse(await text(res.body)) as unknown
      } catch (e) {
        return { error: { message: (e as Error).message } }
      } finally {
        if (this.#workers.has(w) && w.state === 'Running') { w.state = 'Idle'; w.idleSince = Date.now(); this.#dispatch() }
      }
    }))
  }

  /** Graceful reload: new workers take new requests; old ones finish what they run and exit. */
  async reload(): Promise<void> {
    const old = [...this.#workers]
    for (const w of old) {
      w.retiring = true
      if (w.state !== 'Running') this.#stop(w)
    }
    this.#balance()
    if (this.#s.pm === 'dynamic' && this.#live().length < this.#s.startServers) for (let i = this.#live().length; i < this.#s.startServers; i++) this.#spawn()
    // A running old worker is stopped when its request is done (see `request`).
    await Promise.all(this.#live().map((w) => w.ready))
    this.#dispatch()
  }

  /** PHP-FPM's status page fields, for the pool and for each process. */
  status(): Record<string, unknown> {
    const now = Date.now()
    const workers = [...this.#workers]
    const active = workers.filter((w) => w.state === 'Running').length
    return {
      pool: this.#o.name,
      'process manager': this.#s.pm,
      'start time': new Date(this.started).toISOString(),
      'start since': Math.floor((now - this.started) / 1000),
      'accepted conn': this.acceptedConn,
      'listen queue': this.#queue.length,
      'max listen queue': this.maxListenQueue,
      'idle processes': workers.filter((w) => w.state === 'Idle').length,
      'active processes': active,
      'total processes': workers.length,
      'max active processes': this.maxActive,
      'max children reached': this.maxChildrenReached,
      'slow requests': this.slowRequests,
      respawns: this.respawns,
      'hung processes': this.hangs,
      processes: workers.map((w) => ({
        pid: w.pid,
        state: w.state,
        'start time': new Date(w.started).toISOString(),
        'start since': Math.floor((now - w.started) / 1000),
        requests: w.requests,
        'request duration': w.current ? (now - w.current.started) * 1000 : (w.last?.duration ?? 0) * 1000,
        'request method': w.current?.method ?? w.last?.method ?? '-',
        'request uri': w.current?.uri ?? w.last?.uri ?? '-',
        'content length': w.current?.contentLength ?? w.last?.contentLength ?? 0,
        'last request cpu': w.last && w.last.duration > 0 ? Math.round((w.last.cpu / w.last.duration) * 10000) / 100 : 0,
        'last request memory': w.state === 'Idle' ? (w.last?.memory ?? 0) : 0,
        rss: rssBytes(w.pid),
      })),
    }
  }

  /** RSS of every worker together, for memory eviction. */
  rss(): number {
    let n = 0
    for (const w of this.#workers) n += rssBytes(w.pid)
    return n
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    for (const q of this.#queue.splice(0)) q.reject(new PoolError('closed', `the ${this.#o.name} pool is closing`))
    const exits = [...this.#workers].map((w) => new Promise<void>((r) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) { r(); return }
      w.child.once('exit', () => r())
      w.child.kill('SIGTERM')
      setTimeout(() => w.child.kill('SIGKILL'), 5000).unref()
    }))
    await Promise.all(exits)
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
