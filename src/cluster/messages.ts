// The messages a cluster primary and its workers exchange over node:cluster's IPC channel.
import type { ProcessSnapshot } from '../ops/snapshot.ts'

import type { AdminAction } from '../server/admin-routes.ts'

/** An admin action the primary rolls through every worker, one at a time. */
export type ClusterAction = AdminAction

/** Worker → primary: a question about (or an action on) every process. */
export type WorkerAsk =
  | { type: 'resident:ask'; id: number; what: 'snapshots' }
  | { type: 'resident:ask'; id: number; what: 'metrics' }
  | { type: 'resident:ask'; id: number; what: 'act'; act: ClusterAction }

/** Primary → worker: the answer to an ask. */
export interface PrimaryAnswer { type: 'resident:answer'; id: number; ok: boolean; value?: unknown; error?: { message: string; status?: number; code?: string } }

/** Primary → worker: do something to this process only, and say how it went. */
export type PrimaryCommand =
  | { type: 'resident:snapshot'; id: number }
  | { type: 'resident:act'; id: number; act: ClusterAction }
  | { type: 'resident:shutdown' }
  | { type: 'resident:reopen-logs' }

/** Worker → primary: the reply to a PrimaryCommand. */
export interface WorkerReply { type: 'resident:reply'; id: number; ok: boolean; value?: ProcessSnapshot | unknown; error?: { message: string; status?: number; code?: string } }

/** Worker → primary: this worker listens and serves. */
export interface WorkerListening { type: 'resident:listening'; url: string }

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type
}

/** An error as it crosses the channel: message, and the HTTP status and code when it had them. */
export function wireError(e: unknown): { message: string; status?: number; code?: string } {
  const x = e as { message?: unknown; status?: unknown; code?: unknown }
  return {
    message: String(x?.message ?? e),
    ...(typeof x?.status === 'number' ? { status: x.status } : {}),
    ...(typeof x?.code === 'string' ? { code: x.code } : {}),
  }
}
