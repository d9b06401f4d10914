// Real peers as baselines, when their Debian packages are installed: the same greeting served by
// nginx + php-fpm, lighttpd + a plain node CGI script, lighttpd + php-cgi, and nginx + uWSGI.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { freePort, spawnUntil, stopProcess, waitForFile, waitForPort } from '../spawn.ts'
import type { BenchContext, RunningTarget, Target } from './types.ts'

const find = (...paths: string[]): string | undefined => paths.find((p) => existsSync(p))
export const nginxBin = () => find('/usr/sbin/nginx')
const phpFpmBin = () => find('/usr/sbin/php-fpm8.2', '/usr/sbin/php-fpm8.3', '/usr/sbin/php-fpm8.4', '/usr/sbin/php-fpm')
const phpCgiBin = () => find('/usr/bin/php-cgi')
const lighttpdBin = () => find('/usr/sbin/lighttpd')
const uwsgiBin = () => find('/usr/bin/uwsgi-core', '/usr/bin/uwsgi')

export const needs = (...pairs: [string | undefined, string][]): string | undefined => {
  const missing = pairs.filter(([p]) => !p).map(([, pkg]) => pkg)
  return missing.length === 0 ? undefined : `apt-get install ${missing.join(' ')}`
}

const HELLO_PHP = `<?php
header('Content-Type: application/json; charset=utf-8');
echo json_encode(['hello' => $_GET['name'] ?? 'world']);
`

// A plain CGI script: what an author would write without Resident.
const HELLO_CGI_JS = `const q = new URLSearchParams(process.env.QUERY_STRING || '')
const body = JSON.stringify({ hello: q.get('name') ?? 'world' })
process.stdout.write('Content-Type: application/json; charset=utf-8\\r\\nContent-Length: ' + Buffer.byteLength(body) + '\\r\\n\\r\\n' + body)
`

function www(dir: string): string {
  const root = path.join(dir, 'www')
  mkdirSync(root, { recursive: true })
  writeFileSync(path.join(root, 'hello.php'), HELLO_PHP)
  writeFileSync(path.join(root, 'hello.js'), HELLO_CGI_JS)
  writeFileSync(path.join(root, 'hello.json'), JSON.stringify({ hello: 'bench' }))
  // The same programs for lighttpd's mod_cgi, each started in a session of its own, as Resident
  // starts every CGI program (a process group it can signal as one). With the kernel's autogroup
  // scheduling a session is also a scheduling group: programs in sessions of their own would
  // otherwise get more CPU on a busy machine than lighttpd's, which share its one.
  const setsid = existsSync('/usr/bin/setsid') ? '/usr/bin/setsid ' : ''
  writeFileSync(path.join(root, 'hello-js.cgi'), `#!${setsid}${process.execPath}\n${HELLO_CGI_JS}`)
  writeFileSync(path.join(root, 'hello-php.cgi'), `#!${setsid}${phpCgiBin() ?? '/usr/bin/php-cgi'}\n${HELLO_PHP}`)
  for (const f of ['hello-js.cgi', 'hello-php.cgi']) chmodSync(path.join(root, f), 0o755)
  return root
}

const asRoot = () => process.getuid?.() === 0

/** nginx in the foreground, one worker, logging off; `location` is the block that serves. */
export async function startNginx(dir: string, location: string, http = ''): Promise<{ port: number; stop(): Promise<void>; pid(): number }> {
  const port = await freePort()
  for (const t of ['body', 'fastcgi', 'uwsgi', 'proxy', 'scgi']) mkdirSync(path.join(dir, `tmp-${t}`), { recursive: true })
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, `${asRoot() ? 'user root;\n' : ''}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # A load generator keeps its connections for the whole round; nginx's default of closing one
  # after 1000 requests races the next request on it (a reset the client counts as an error).
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/tmp-body;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  proxy_temp_path ${dir}/tmp-proxy;
  scgi_temp_path ${dir}/tmp-scgi;
${http}
  server {
    listen 127.0.0.1:${port};
    location / {
${location}
    }
  }
}
`)
  const { child } = await spawnUntil(nginxBin()!, ['-p', dir, '-c', conf, '-e', `${dir}/nginx-error.log`], null)
  await waitForPort(port)
  return { port, pid: () => child.pid!, stop: () => stopProcess(child) }
}

export const fastcgiParams = (scriptFilename: string) => `      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param SCRIPT_FILENAME ${scriptFilename};
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_NAME $server_name;
      fastcgi_param REDIRECT_STATUS 200;`

export function nginxPhpFpm(): Target {
  return {
    name: 'nginx + php-fpm',
    kind: 'baseline',
    missing: () => needs([nginxBin(), 'nginx'], [phpFpmBin(), 'php-fpm']),
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      const dir = path.join(ctx.scratch, `php-fpm-${round}`)
      const root = www(dir)
      const sock = path.join(dir, 'php-fpm.sock')
      const conf = path.join(dir, 'php-fpm.conf')
      // Two children for two cores; a static pool, so no spawning during the load.
      writeFileSync(conf, `[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
daemonize = no
[bench]
${asRoot() ? 'user = root\ngroup = root\n' : ''}listen = ${sock}
listen.mode = 0666
pm = static
pm.max_children = 2
`)
      const fpm = await spawnUntil(phpFpmBin()!, ['-F', '-y', conf, ...(asRoot() ? ['-R'] : [])], null)
      await waitForFile(sock)
      const nginx = await startNginx(dir, `      fastcgi_pass unix:${sock};\n${fastcgiParams(path.join(root, 'hello.php'))}`)
      return {
        request: { url: `http://127.0.0.1:${nginx.port}/hello.php?name=bench`, method: 'GET' },
        roots: () => [nginx.pid(), fpm.child.pid!],
        async stop() { await nginx.stop(); await stopProcess(fpm.child) },
      }
    },
  }
}

async function startLighttpd(dir: string): Promise<{ port: number; stop(): Promise<void>; pid(): number }> {
  const root = www(dir)
  const port = await freePort()
  const conf = path.join(dir, 'lighttpd.conf')
  writeFileSync(conf, `server.document-root = "${root}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/lighttpd-error.log"
server.modules = ( "mod_cgi" )
server.max-connections = 4096
cgi.assign = ( ".cgi" => "" )
`)
  const { child } = await spawnUntil(lighttpdBin()!, ['-D', '-f', conf], null)
  await waitForPort(port)
  return { port, pid: () => child.pid!, stop: () => stopProcess(child) }
}

function lighttpdCgi(name: string, script: string, extra: () => string | undefined): Target {
  return {
    name,
    kind: 'baseline',
    missing: () => needs([lighttpdBin(), 'lighttpd']) ?? extra(),
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      const server = await startLighttpd(path.join(ctx.scratch, `${script}-${round}`))
      return {
        request: { url: `http://127.0.0.1:${server.port}/${script}?name=bench`, method: 'GET' },
        roots: () => [server.pid()],
        stop: () => server.stop(),
      }
    },
  }
}

export const lighttpdNodeCgi = (): Target => lighttpdCgi('lighttpd + node CGI', 'hello-js.cgi', () => undefined)
export const lighttpdPhpCgi = (): Target => lighttpdCgi('lighttpd + php-cgi', 'hello-php.cgi', () => needs([phpCgiBin(), 'php-cgi']))

// Debian's uWSGI has no JavaScript plugin; its routing engine (C) serves the greeting as a file.
// That is the protocol's floor rather than the same work, and the report says so.
export function nginxUwsgi(): Target {
  return {
    name: 'nginx + uWSGI',
    kind: 'baseline',
    missing: () => needs([nginxBin(), 'nginx'], [uwsgiBin(), 'uwsgi-core']),
    async start(ctx: BenchContext, round: number): Promise<RunningTarget> {
      const dir = path.join(ctx.scratch, `uwsgi-${round}`)
      const root = www(dir)
      const sock = path.join(dir, 'uwsgi.sock')
      const uwsgi = await spawnUntil(uwsgiBin()!, [
        '--socket', sock, '--chmod-socket=666', '--processes', '2', '--plugin', 'router_static',
        '--route-run', `static:${path.join(root, 'hello.json')}`, '--disable-logging',
      ], null)
      await waitForFile(sock)
      const nginx = await startNginx(dir, `      uwsgi_pass unix:${sock};\n      uwsgi_param QUERY_STRING $query_string;\n      uwsgi_param REQUEST_METHOD $request_method;\n      uwsgi_param PATH_INFO $document_uri;\n      uwsgi_param REQUEST_URI $request_uri;`)
      return {
        request: { url: `http://127.0.0.1:${nginx.port}/hello/greet?name=bench`, method: 'GET' },
        roots: () => [nginx.pid(), uwsgi.child.pid!],
        async stop() { await nginx.stop(); await stopProcess(uwsgi.child) },
      }
    },
  }
}
