import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
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
  /**
   * The configuration file every mode serves with (its filters, limits, extension settings), as
   * `resident serve` would read it; null: none, so no filters (the command and its tier alone).
   */
  config: string | null
  /** Whether the extensions folder was named on the command line (it then overrides the config's). */
  extensionsGiven: boolean
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

/**
 * A scratch folder for one Resident process of a round: an empty filters folder (the command's own
 * cost) and a config with no idle unloads, so nothing unloads during the load.
 */
export function residentScratch(ctx: BenchContext, name: string, round: number, logLevel: string): { dir: string; filters: string; config: string } {
  const dir = path.join(ctx.scratch, `${name}-${round}`)
  const filters = path.join(dir, 'no-filters')
  mkdirSync(filters, { recursive: true })
  const config = path.join(dir, 'resident.config.json')
  writeFileSync(config, JSON.stringify({ idleTimeout: 0, logLevel }))
  return { dir, filters, config }
}
