// Baselines that always run: bare node:http and bare fastify doing hello.greet's work.
import { fileURLToPath } from 'node:url'
import { spawnUntil, stopProcess } from '../spawn.ts'
import type { RunningTarget, Target } from './types.ts'

function scriptBaseline(name: string, script: string): Target {
  return {
    name,
    kind: 'baseline',
    missing: () => undefined,
    async start(): Promise<RunningTarget> {
      const file = fileURLToPath(new URL(`../baselines/${script}`, import.meta.url))
      const { child, match } = await spawnUntil(process.execPath, [file], /listening on (http:\/\/\S+)/)
      return {
        request: { url: `${match[1]}/hello/greet?name=bench`, method: 'GET' },
        roots: () => [child.pid!],
        stop: () => stopProcess(child),
      }
    },
  }
}

export const nodeHttpBaseline = (): Target => scriptBaseline('node:http', 'node-http.js')
export const fastifyBaseline = (): Target => scriptBaseline('fastify', 'fastify.js')
