import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'

describe('the cgi config section', () => {
  it('resolves folders against the config file and lower-cases extensions', () => {
    const c = resolveConfig({ cgi: { bin: { '/cgi-bin/': 'cgi-bin', '/legacy/app/': '/srv/app' }, interpreters: { '.PHP': 'php-cgi' }, timeout: '5s', maxOutput: '1MB' } }, { file: '/etc/resident/resident.config.json' })
    expect(c.cgi.bin).toEqual([{ prefix: '/cgi-bin/', dir: '/etc/resident/cgi-bin' }, { prefix: '/legacy/app/', dir: path.resolve('/srv/app') }])
    expect(c.cgi.interpreters).toEqual({ '.php': 'php-cgi' })
    expect(c.cgi.timeout).toBe(5000)
    expect(c.cgi.maxOutput).toBe(1024 * 1024)
    expect(c.cgi.passAuthorization).toBe(false)
    expect(c.cgi.spawn).toBe('helper')
    expect(resolveConfig({ cgi: { spawn: 'direct' } }, { cwd: '/' }).cgi.spawn).toBe('direct')
  })

  it('lists every problem', () => {
    expect(() => resolveConfig({ cgi: {
      bin: { 'cgi-bin': 'x', '/../': 'y', '/': 'z', '/_resident/x/': 'w' },
      interpreters: { php: 'php-cgi', '.py': 'python3 -u' },
      timeout: 'soon', passEnv: ['A=B'], env: { X: 'a\nb' }, passAuthorization: 'yes', spawn: 'fork', other: 1,
    } }, { cwd: '/' })).toThrow(/cgi\.other[\s\S]*"cgi-bin"[\s\S]*"\/\.\.\/"[\s\S]*"\/" would shadow[\s\S]*_resident[\s\S]*"php"[\s\S]*no arguments[\s\S]*cgi\.timeout[\s\S]*passEnv[\s\S]*cgi\.env\.X[\s\S]*passAuthorization[\s\S]*"cgi\.spawn" must be "helper" or "direct", got "fork"/)
  })
})
