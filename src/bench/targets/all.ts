import { fastifyBaseline, nodeHttpBaseline } from './baselines.ts'
import { modeTarget, type BenchMode } from './modes.ts'
import { nginxFcgiWorker, nginxUwsgiWorker } from './protocols.ts'
import { lighttpdNodeCgi, lighttpdPhpCgi, nginxPhpFpm, nginxUwsgi } from './peers.ts'
import type { Target } from './types.ts'

/** Every baseline, in report order: bare Node first, then the real peers. */
export const BASELINES: Record<string, () => Target> = {
  'node:http': nodeHttpBaseline,
  fastify: fastifyBaseline,
  'nginx + php-fpm': nginxPhpFpm,
  'lighttpd + node CGI': lighttpdNodeCgi,
  'lighttpd + php-cgi': lighttpdPhpCgi,
  'nginx + uWSGI': nginxUwsgi,
  'nginx → fcgi-worker': nginxFcgiWorker,
  'nginx → uwsgi-worker': nginxUwsgiWorker,
}

/** A baseline's short name for the command line: "nginx + php-fpm" → "nginx-php-fpm". */
export const baselineId = (name: string): string =>
  name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')

/** The baseline a --baselines entry names, by its short name or its full one; undefined if none. */
export function findBaseline(given: string): string | undefined {
  const id = baselineId(given)
  return Object.keys(BASELINES).find((name) => name === given || baselineId(name) === id)
}

export function benchTargets(modes: readonly BenchMode[], baselines: readonly string[]): Target[] {
  return [...modes.map(modeTarget), ...baselines.map((b) => BASELINES[b]!())]
}
