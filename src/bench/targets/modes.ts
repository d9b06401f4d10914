// Resident itself, one target per mode: `resident serve --mode <mode>` in a fresh process.
import { spawnUntil, stopProcess } from '../spawn.ts'
import { queryOf, residentScratch, type BenchContext, type RunningTarget, type Target } from './types.ts'

export const MODES = ['inprocess', 'worker', 'fastcgi', 'cgi'] as const
export type BenchMode = (typeof MODES)[number]

export function modeTarget(mode: BenchMode): Target {
  return {
    name: mode,
    kind: 'mode',
    missing: () => undefined,
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      // info: the banner says where it listens; a request that succeeds writes no line.
      const { dir, filters, config } = residentScratch(ctx, mode, round, 'info')
      const { child, match } = await spawnUntil(process.execPath, [
        ctx.bin, 'serve', '--port', '0', '--host', '127.0.0.1', '--config', config,
        '--extensions', ctx.extensionsDir, '--filters', filters,
        // in process is the default: the flag is only needed to leave it.
        ...(mode === 'inprocess' ? [] : ['--mode', mode]),
      ], /Resident listening on (http:\/\/[^\s"\\]+)/, { cwd: dir })
      const base = match[1]!
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
