import type { LoadRequest } from '../load.ts'

/** What one bench run measures: the same command for every mode; the baselines do hello.greet's work. */
export interface BenchContext {
  /** Absolute extensions folder. */
  extensionsDir: string
  extension: string
  command: string
  /** Query parameters (k=v) for the command. */
  params: [string, string][]
  method: string
  body?: Buffer
  contentType?: string
  /** A scratch folder for configs and sockets, removed after the run. */
  scratch: string
  /** The `resident` binary's entry (bin/resident.js). */
  bin: string
}

export interface RunningTarget {
  /** The request the load sends. */
  request: LoadRequest
  /** The process-tree roots whose CPU and RSS are the target's cost. */
  roots(): number[]
  /** Time to the first answer after the code was unloaded, in ms, when the target can unload. */
  coldStartMs?(): Promise<number>
  stop(): Promise<void>
}

export interface Target {
  name: string
  kind: 'mode' | 'baseline'
  /** Why it cannot run on this machine (what to install), or undefined when it can. */
  missing(): string | undefined
  start(ctx: BenchContext, round: number): Promise<RunningTarget>
}

export const queryOf = (params: [string, string][]): string =>
  params.length === 0 ? '' : `?${new URLSearchParams(params).toString()}`
