import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/**
 * Real protocol peers and the browser come from Debian packages, installed by `.ci/run`.
 * In CI (`CI=true`) a missing peer is a failure; on a developer's machine the test is skipped
 * with a line saying what to install.
 */
export interface Peer {
  /** The executable, as found (an absolute path), or undefined when missing. */
  path: string | undefined
  /** The Debian package that brings it. */
  pkg: string
}

const candidates: Record<string, { pkg: string; paths: string[] }> = {
  nginx: { pkg: 'nginx', paths: ['/usr/sbin/nginx'] },
  'php-fpm': { pkg: 'php-fpm', paths: ['/usr/sbin/php-fpm8.2', '/usr/sbin/php-fpm8.3', '/usr/sbin/php-fpm8.4', '/usr/sbin/php-fpm'] },
  'php-cgi': { pkg: 'php-cgi', paths: ['/usr/bin/php-cgi'] },
  'spawn-fcgi': { pkg: 'spawn-fcgi', paths: ['/usr/bin/spawn-fcgi'] },
  'cgi-fcgi': { pkg: 'libfcgi-bin', paths: ['/usr/bin/cgi-fcgi'] },
  lighttpd: { pkg: 'lighttpd', paths: ['/usr/sbin/lighttpd'] },
  uwsgi: { pkg: 'uwsgi-core', paths: ['/usr/bin/uwsgi-core', '/usr/bin/uwsgi'] },
  chromium: { pkg: 'chromium', paths: ['/usr/bin/chromium'] },
}

export type PeerName = keyof typeof candidates

export function findPeer(name: PeerName): Peer {
  const c = candidates[name]!
  return { path: c.paths.find((p) => existsSync(p)), pkg: c.pkg }
}

/**
 * Returns the peers' paths when all are installed, or `undefined` (after printing what to
 * install) so the caller can `describe.skipIf(!peers)`. Throws in CI, where a missing peer
 * must fail the run.
 */
export function requirePeers<const N extends PeerName>(...names: N[]): Record<N, string> | undefined {
  const found = {} as Record<N, string>
  const missing: string[] = []
  for (const n of names) {
    const p = findPeer(n)
    if (p.path) found[n] = p.path
    else missing.push(`${n} (apt-get install ${p.pkg})`)
  }
  if (missing.length === 0) return found
  const line = `missing real peer(s): ${missing.join(', ')}`
  if (process.env.CI === 'true') throw new Error(`${line}; .ci/run installs them`)
  console.warn(`skipping: ${line}`)
  return undefined
}

/** The version line a peer prints, for test names and reports. */
export function peerVersion(path: string, args = ['-v']): string {
  try {
    return execFileSync(path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim()
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? '').split('\n')[0]!.trim()
  }
}
