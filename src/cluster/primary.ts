import cluster, { type Worker } from 'node:cluster'
import client from 'prom-client'
import type { Logger as PinoLogger } from 'pino'
import type { ResidentConfig } from '../config/types.ts'
import { flushLogs, reopenLogFiles } from '../server/logger.ts'
import { isMessage, wireError, type ClusterAction, type PrimaryCommand, type WorkerAsk, type WorkerListening, type WorkerReply } from './messages.ts'

interface Member {
  index: number
  worker: Worker
  startedAt: number
  listening: boolean
}

/** A respawn waits 0 ms the first time, then 250 ms doubling up to 30 s while the process keeps dying young. */
export function respawnDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 2))
}
/** A process that lived this long counts as healthy: its next death starts the backoff over. */
const HEALTHY_AFTER = 30_000

/**
 * The cluster's primary: serves nothing itself. It forks `config.workers` server processes (which
 * share the listening socket through node:cluster), respawns one that dies (with backoff), answers
 * the workers' questions about every process (status, dashboard, metrics), rolls admin actions and
 * SIGHUP reloads through the processes one at a time, and on SIGTERM drains them all.
 */
export function runPrimary(config: ResidentConfig, log: PinoLogger): void {
  const members = new Map<number, Member>()
  const failures = new Map<number, number>()
  const aggregator = new client.AggregatorRegistry()
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  let nextId = 1
  let stopping = false
  let rolling: Promise<unknown> = Promise.resolve()

  const live = () => [...members.values()].filter((m) => m.listening && m.worker.isConnected()).sort((a, b) => a.index - b.index)

  function command(m: Member, cmd: { type: 'resident:snapshot' } | { type: 'resident:act'; act: ClusterAction }, timeout: number): Promise<unknown> {
    const id = nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { pending.delete(id); reject(new Error(`process ${m.worker.process.pid} did not answer within ${timeout} ms`)) }, timeout)
      pending.set(id, { resolve, reject, timer })
      m.worker.send({ ...cmd, id } as PrimaryCommand)
    })
  }

  async function snapshots(): Promise<unknown[]> {
    const all = await Promise.allSettled(live().map((m) => command(m, { type: 'resident:snapshot' }, 3_000)))
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  }

  /** One process after the other: each finishes (its new generations in service, old ones draining) before the next starts. */
  function roll(act: ClusterAction): Promise<Array<{ pid: number; value: unknown }>> {
    const run = rolling.then(async () => {
      const out: Array<{ pid: number; value: unknown }> = []
      for (const m of live()) out.push({ pid: m.worker.process.pid!, value: await command(m, { type: 'resident:act', act }, config.drainTimeout + 120_000) })
      return out
    })
    rolling = run.catch(() => undefined)
    return run
  }

  async function answer(m: Member, ask: WorkerAsk): Promise<void> {
    try {
      const value = ask.what === 'snapshots' ? await snapshots() : ask.what === 'metrics' ? await aggregator.clusterMetrics() : await roll(ask.act)
      m.worker.send({ type: 'resident:answer', id: ask.id, ok: true, value })
    } catch (e) {
      m.worker.send({ type: 'resident:answer', id: ask.id, ok: false, error: wireError(e) })
    }
  }

  function fork(index: number): void {
    const worker = cluster.fork({ RESIDENT_WORKER_INDEX: String(index) })
    const m: Member = { index, worker, startedAt: Date.now(), listening: false }
    members.set(index, m)
    worker.on('message', (msg: unknown) => {
      if (isMessage<WorkerListening>(msg, 'resident:listening')) {
        m.listening = true
        log.info({ worker: index, workerPid: worker.process.pid }, `worker ${index} (pid ${worker.process.pid}) serving`)
      } else if (isMessage<WorkerAsk>(msg, 'resident:ask')) {
        void answer(m, msg)
      } else if (isMessage<WorkerReply>(msg, 'resident:reply')) {
        const p = pending.get(msg.id)
        if (!p) return
        pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.ok) p.resolve(msg.value)
        else p.reject(Object.assign(new Error(msg.error?.message ?? 'failed'), msg.error))
      }
    })
    worker.on('exit', (code, signal) => {
      if (members.get(index) !== m) return
      members.delete(index)
      if (stopping) return
      const lived = Date.now() - m.startedAt
      const n = lived > HEALTHY_AFTER ? 1 : (failures.get(index) ?? 0) + 1
      failures.set(index, n)
      const delay = respawnDelay(n)
      log.error({ worker: index, workerPid: worker.process.pid, code, signal, livedMs: lived, respawnInMs: delay },
        `worker ${index} (pid ${worker.process.pid}) died (${signal ?? `exit code ${code}`}); respawning${delay ? ` in ${delay} ms` : ''}`)
      setTimeout(() => { if (!stopping) fork(index) }, delay)
    })
  }

  for (let i = 1; i <= config.workers; i++) fork(i)
  log.info({ workers: config.workers }, `Resident primary (pid ${process.pid}) started ${config.workers} worker process(es)`)

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: killing the workers without waiting`)
      for (const m of members.values()) m.worker.process.kill('SIGKILL')
      process.exit(1)
    }
    stopping = true
    log.info(`${signal}: draining every worker`)
    for (const m of members.values()) if (m.worker.isConnected()) m.worker.send({ type: 'resident:shutdown' } satisfies PrimaryCommand)
    const force = setTimeout(() => {
      log.warn('workers still running after the drain timeout; killing them')
      for (const m of members.values()) m.worker.process.kill('SIGKILL')
    }, config.drainTimeout + 10_000)
    force.unref()
    const check = () => {
      if (members.size > 0) return
      log.info('every worker stopped')
      void flushLogs().then(() => process.exit(0))
    }
    cluster.on('exit', check)
    check()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading every extension, one process at a time')
    roll({ action: 'reload-all' }).then((r) => log.info({ processes: r.length }, `rolling reload done in ${r.length} process(es)`),
      (e: unknown) => log.error({ err: e }, 'rolling reload failed'))
  })
  process.on('SIGUSR1', () => {
    reopenLogFiles()
    log.info('SIGUSR1: reopening log files in every process')
    for (const m of members.values()) if (m.worker.isConnected()) m.worker.send({ type: 'resident:reopen-logs' } satisfies PrimaryCommand)
  })
}
