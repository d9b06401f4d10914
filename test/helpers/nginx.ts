import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { waitFor } from './poll.ts'

// A failed test must not leave nginx running after the test process ends.
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

export interface Nginx { url: string; port: number; child: ChildProcess; stderr: () => string; stop(): Promise<void> }

/**
 * Real nginx in the foreground over a temp folder: `daemon off`, its pid, temp paths and logs in
 * `dir`, errors on stderr. `http` is the inside of the http block, where `server` may use
 * `{{PORT}}` for the listening port.
 */
export async function startNginx(nginxPath: string, dir: string, http: string): Promise<Nginx> {
  const port = await freePort()
  mkdirSync(path.join(dir, 'nginx-temp'), { recursive: true })
  const t = path.join(dir, 'nginx-temp')
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, `daemon off;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${path.join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${t}/body;
  fastcgi_temp_path ${t}/fastcgi;
  proxy_temp_path ${t}/proxy;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
${http.replaceAll('{{PORT}}', String(port))}
}
`)
  const child = spawn(nginxPath, ['-p', dir, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] })
  children.add(child)
  let err = ''
  child.stderr!.on('data', (d) => { err += d })
  const exited = new Promise<void>((r) => child.once('close', () => { children.delete(child); r() }))
  let dead = false
  void exited.then(() => { dead = true })
  await waitFor(async () => {
    if (dead) throw new Error(`nginx exited:\n${err}`)
    return new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
  }, 'nginx to listen')
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    stderr: () => err,
    async stop() {
      if (!dead) { child.kill('SIGQUIT'); await exited }
    },
  }
}
