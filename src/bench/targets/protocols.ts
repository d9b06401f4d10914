// The same extension behind nginx over FastCGI and over uwsgi: Resident's own responders
// (`resident fcgi-worker`, `resident uwsgi-worker`) on a unix socket, nginx in front. These
// measure the protocols, not a peer's interpreter: the pair behind the seed's uwsgi claim.
import path from 'node:path'
import { spawnUntil, stopProcess, waitForFile } from '../spawn.ts'
import { fastcgiParams, needs, nginxBin, startNginx } from './peers.ts'
import { queryOf, residentScratch, type BenchContext, type RunningTarget, type Target } from './types.ts'

function responderTarget(name: string, command: 'fcgi-worker' | 'uwsgi-worker', location: (sock: string) => string, http: (sock: string) => string = () => ''): Target {
  return {
    name,
    kind: 'baseline',
    missing: () => needs([nginxBin(), 'nginx']),
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      const { dir, filters, config } = residentScratch(ctx, command, round, 'warn')
      const sock = path.join(dir, `${command}.sock`)
      const worker = await spawnUntil(process.execPath, [
        ctx.bin, command, '--listen', `unix:${sock}`, '--config', config, '--extensions', ctx.extensionsDir, '--filters', filters,
      ], null, { cwd: dir })
      try { await waitForFile(sock) } catch (e) { await stopProcess(worker.child); throw e }
      const nginx = await startNginx(dir, location(sock), http(sock))
      const headers: Record<string, string> = {}
      if (ctx.contentType) headers['content-type'] = ctx.contentType
      return {
        request: { url: `http://127.0.0.1:${nginx.port}/${ctx.extension}/${ctx.command}${queryOf(ctx.params)}`, method: ctx.method, body: ctx.body, headers },
        roots: () => [nginx.pid(), worker.child.pid!],
        async stop() { await nginx.stop(); await stopProcess(worker.child) },
      }
    },
  }
}

const UWSGI_PARAMS = ['QUERY_STRING $query_string', 'REQUEST_METHOD $request_method', 'CONTENT_TYPE $content_type',
  'CONTENT_LENGTH $content_length', 'REQUEST_URI $request_uri', 'PATH_INFO $document_uri', 'SERVER_PROTOCOL $server_protocol',
  'REMOTE_ADDR $remote_addr', 'REMOTE_PORT $remote_port', 'SERVER_PORT $server_port', 'SERVER_NAME $server_name', 'HTTP_HOST $host']

// nginx keeps FastCGI connections open to an upstream with `keepalive` (fastcgi_keep_conn);
// it never reuses a uwsgi connection. Each protocol gets what nginx does best with it.
export const nginxFcgiWorker = (): Target => responderTarget('nginx → fcgi-worker', 'fcgi-worker',
  () => `      fastcgi_pass resident_fcgi;\n      fastcgi_keep_conn on;\n${fastcgiParams('$document_root$fastcgi_script_name')}`,
  (sock) => `  upstream resident_fcgi { server unix:${sock}; keepalive 32; }`)

export const nginxUwsgiWorker = (): Target => responderTarget('nginx → uwsgi-worker', 'uwsgi-worker', (sock) =>
  `      uwsgi_pass unix:${sock};\n${UWSGI_PARAMS.map((p) => `      uwsgi_param ${p};`).join('\n')}`)
