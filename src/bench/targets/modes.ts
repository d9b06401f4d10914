// Resident itself, one target per mode: `resident serve --mode <mode>` in a fresh process.
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { freePort, spawnUntil, stopProcess, waitForHttp } from '../spawn.ts'
import { queryOf, residentScratch, type BenchContext, type RunningTarget, type Target } from './types.ts'

export const MODES = ['inprocess', 'worker', 'fastcgi', 'cgi'] as const
export type BenchMode = (typeof MODES)[number]

export function modeTarget(mode: BenchMode): Target {
  return {
    name: mode,
    kind: 'mode',
    missing: () => undefined,
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      const { child, base } = await startMode(ctx, mode, round)
      const url = `${base}/${ctx.extension}/${ctx.command}${queryOf(ctx.params)}`
      const headers: Record<string, string> = {}
      if (ctx.contentType) headers['content-type'] = ctx.contentType
      return {
        request: { url, method: ctx.method, body: ctx.body, headers },
        roots: () => [child.pid!],
        async coldStartMs() {
          const unload = await fetch(`${base}/_resident/extensions/${ctx.extension}/unload`, {
            method: 'POST', headers: { 'x-resident-admin': '1' },
          })
          await unload.arrayBuffer()
          if (!unload.ok) throw new Error(`unload answered ${unload.status}`)
          const t0 = performance.now()
          const r = await fetch(url, { method: ctx.method, body: ctx.body ? new Uint8Array(ctx.body) : undefined, headers })
          await r.arrayBuffer()
          // The time to an answer, whatever its status: a command that answers 4xx under load does here too.
          return performance.now() - t0
        },
        stop: () => stopProcess(child),
      }
    },
  }
}

/** `resident serve --mode <mode>` in a fresh process; resolves once it answers. */
async function startMode(ctx: BenchContext, mode: BenchMode, round: number): Promise<{ child: ChildProcess; base: string }> {
  // in process is the default: the flag is only needed to leave it.
  const modeFlag = mode === 'inprocess' ? [] : ['--mode', mode]
  if (ctx.config === null) {
    // info: the banner says where it listens; a request that succeeds writes no line.
    const { dir, filters, config } = residentScratch(ctx, mode, round, 'info')
    const { child, match } = await spawnUntil(process.execPath, [
      ctx.bin, 'serve', '--port', '0', '--host', '127.0.0.1', '--config', config,
      '--extensions', ctx.extensionsDir, '--filters', filters, ...modeFlag,
    ], /Resident listening on (http:\/\/[^\s"\\]+)/, { cwd: dir })
    return { child, base: match[1]! }
  }
  // The user's own configuration, from its own folder (its paths are relative to it). Its log
  // settings are the user's too, so readiness is the health endpoint answering, not a log line.
  const port = await freePort()
  const { child } = await spawnUntil(process.execPath, [
    ctx.bin, 'serve', '--port', String(port), '--host', '127.0.0.1', '--config', ctx.config,
    ...(ctx.extensionsGiven ? ['--extensions', ctx.extensionsDir] : []), ...modeFlag,
  ], null, { cwd: path.dirname(ctx.config) })
  const base = `http://127.0.0.1:${port}`
  await waitForHttp(`${base}/_resident/health`, child)
  return { child, base }
}
