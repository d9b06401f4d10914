import client from 'prom-client'
import { errors, ResidentError, type ErrorCode } from '../errors.ts'
import type { ProcessSnapshot } from '../ops/snapshot.ts'
import { buildView, type View } from '../ops/view.ts'
import { localAction, type AdminAction, type ClusterAdmin } from '../server/admin-routes.ts'
import type { ResidentServer } from '../server/app.ts'
import { reopenLogFiles } from '../server/logger.ts'
import { isMessage, wireError, type PrimaryAnswer, type PrimaryCommand, type WorkerAsk, type WorkerReply } from './messages.ts'

let nextId = 1
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()

/** An error from another process, as the error it was there when it was one of Resident's. */
function fromWire(e: { message: string; status?: number; code?: string } | undefined): Error {
  if (e?.code && e.code in errors) return new ResidentError(e.code as ErrorCode, e.message)
  return new Error(e?.message ?? 'the cluster primary failed to answer')
}

function ask(what: 'snapshots' | 'metrics' | 'act', act?: AdminAction): Promise<unknown> {
  const id = nextId++
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject })
    process.send!({ type: 'resident:ask', id, what, ...(act ? { act } : {}) } as WorkerAsk)
  })
}

/** What a worker's server needs to show and act on every process: everything goes through the primary. */
export function workerHooks(): { cluster: ClusterAdmin; clusterView: () => Promise<View> } {
  const cluster: ClusterAdmin = {
    snapshots: () => ask('snapshots') as Promise<ProcessSnapshot[]>,
    metrics: () => ask('metrics') as Promise<string>,
    act: (a) => ask('act', a) as Promise<Array<{ pid: number; value: unknown }>>,
  }
  return { cluster, clusterView: async () => buildView(await cluster.snapshots()) }
}

/**
 * Answers the primary: this process's snapshot, an action on this process (one step of a rolling
 * action), shutdown, log reopening. Tells the primary once it serves.
 */
export function serveAsWorker(server: ResidentServer, url: string, stop: () => void): void {
  // prom-client answers the primary's metrics requests itself, from these registries.
  client.AggregatorRegistry.setRegistries(server.metrics.registries())
  void new client.AggregatorRegistry()
  const reply = (m: WorkerReply) => { if (process.connected) process.send!(m) }
  process.on('message', (msg: unknown) => {
    if (isMessage<PrimaryAnswer>(msg, 'resident:answer')) {
      const w = waiting.get(msg.id)
      if (!w) return
      waiting.delete(msg.id)
      if (msg.ok) w.resolve(msg.value)
      else w.reject(fromWire(msg.error))
      return
    }
    if (typeof msg !== 'object' || msg === null) return
    const cmd = msg as PrimaryCommand
    if (cmd.type === 'resident:snapshot') {
      server.snapshot().then((value) => reply({ type: 'resident:reply', id: cmd.id, ok: true, value }),
        (e: unknown) => reply({ type: 'resident:reply', id: cmd.id, ok: false, error: wireError(e) }))
    } else if (cmd.type === 'resident:act') {
      localAction({ registry: server.registry, filters: server.filters, log: server.log }, cmd.act).then(
        (value) => reply({ type: 'resident:reply', id: cmd.id, ok: true, value }),
        (e: unknown) => reply({ type: 'resident:reply', id: cmd.id, ok: false, error: wireError(e) }))
    } else if (cmd.type === 'resident:shutdown') {
      stop()
    } else if (cmd.type === 'resident:reopen-logs') {
      reopenLogFiles()
    }
  })
  // The primary rolls reloads through the processes; a hangup of the terminal must not kill this one.
  process.on('SIGHUP', () => {})
  process.send!({ type: 'resident:listening', url })
}
