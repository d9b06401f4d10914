import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { waitFor } from './poll.ts'

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

export interface PhpFpm { socket: string; child: ChildProcess; /** Its log file so far. */ output: () => string; stop(): Promise<void> }

/**
 * Real php-fpm in the foreground (`-F -y conf`) with a pool of its own on a unix socket in `dir`,
 * no php.ini, and its log on stderr. `pool` adds directives to the pool section.
 */
export async function startPhpFpm(fpmPath: string, dir: string, pool: Record<string, string | number> = {}): Promise<PhpFpm> {
  const socket = path.join(dir, 'php-fpm.sock')
  const conf = path.join(dir, 'php-fpm.conf')
  const root = process.getuid?.() === 0
  const lines = {
    listen: socket,
    pm: 'static',
    'pm.max_children': 2,
    'catch_workers_output': 'yes',
    'clear_env': 'no',
    ...(root ? { user: 'root', group: 'root' } : {}),
    ...pool,
  }
  writeFileSync(conf, `[global]
pid = ${path.join(dir, 'php-fpm.pid')}
error_log = ${path.join(dir, 'php-fpm.log')}
daemonize = no
log_level = notice

[resident-test]
${Object.entries(lines).map(([k, v]) => `${k} = ${v}`).join('\n')}
`)
  const child = spawn(fpmPath, ['-F', '-n', '-y', conf, ...(root ? ['-R'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  let dead = false
  const exited = new Promise<void>((r) => child.once('close', () => { dead = true; children.delete(child); r() }))
  await waitFor(() => {
    if (dead) throw new Error(`php-fpm exited:\n${out}${existsSync(path.join(dir, 'php-fpm.log')) ? readFileSync(path.join(dir, 'php-fpm.log'), 'utf8') : ''}`)
    return existsSync(socket)
  }, 'php-fpm to listen')
  return {
    socket, child, output: () => out + (existsSync(path.join(dir, 'php-fpm.log')) ? readFileSync(path.join(dir, 'php-fpm.log'), 'utf8') : ''),
    async stop() { if (!dead) { child.kill('SIGQUIT'); await exited } },
  }
}
