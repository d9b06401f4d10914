import path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config/load.ts'
import { parseDuration, parseSize } from '../src/config/units.ts'

describe('config', () => {
  it('fills documented defaults', () => {
    const c = resolveConfig({}, { cwd: '/srv/app' })
    expect(c).toMatchObject({
      host: '127.0.0.1', port: 3000, extensionsDir: '/srv/app/extensions', filtersDir: '/srv/app/filters',
      bodyLimit: 1048576, requestTimeout: 30000, drainTimeout: 30000, requestIdHeader: null, development: false, admin: { token: null },
    })
  })

  it('takes a request-id header name, lower-cased, and refuses anything else', () => {
    expect(resolveConfig({ requestIdHeader: 'X-Request-Id' }).requestIdHeader).toBe('x-request-id')
    expect(resolveConfig({ requestIdHeader: null }).requestIdHeader).toBeNull()
    for (const bad of ['x request id', '', 42, 'x-id\n']) {
      expect(() => resolveConfig({ requestIdHeader: bad })).toThrow(/"requestIdHeader" must be a header name/)
    }
  })

  it('traces faults by context unless faultTracing is "stack"', () => {
    expect(resolveConfig({}).faultTracing).toBe('context')
    expect(resolveConfig({ faultTracing: 'stack' }).faultTracing).toBe('stack')
    expect(() => resolveConfig({ faultTracing: 'frames' })).toThrow(/"faultTracing" must be "context" or "stack"/)
  })

  it('seals the shared prototypes unless sealPrototypes is false', () => {
    expect(resolveConfig({}).sealPrototypes).toBe(true)
    expect(resolveConfig({ sealPrototypes: false }).sealPrototypes).toBe(false)
    expect(() => resolveConfig({ sealPrototypes: 'no' })).toThrow(/"sealPrototypes" must be true or false/)
  })

  it('resolves folders against the config file’s folder', () => {
    const c = resolveConfig({ extensionsDir: 'ext' }, { file: '/etc/resident/resident.config.json' })
    expect(c.extensionsDir).toBe(path.resolve('/etc/resident/ext'))
  })

  it('takes human units', () => {
    const c = resolveConfig({ bodyLimit: '2MB', requestTimeout: '5s', drainTimeout: '1m' })
    expect(c.bodyLimit).toBe(2 * 1024 * 1024)
    expect(c.requestTimeout).toBe(5000)
    expect(c.drainTimeout).toBe(60000)
  })

  it('lists every problem at once', () => {
    let message = ''
    try { resolveConfig({ port: -1, nope: 1, admin: { token: 'short' }, extensions: { calc: { colour: 1 } } }) } catch (e) { message = (e as Error).message }
    for (const part of ['"port" must be', 'unknown setting "nope"', '"admin.token" must be', 'unknown setting "extensions.calc.colour"']) {
      expect(message).toContain(part)
    }
  })

  it('parses sizes and durations exactly, or not at all', () => {
    expect(parseSize('512MB')).toBe(512 * 1024 * 1024)
    expect(parseSize('1.5kb')).toBe(1536)
    expect(parseSize('12 parsecs')).toBeUndefined()
    expect(parseDuration('10m')).toBe(600000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('-1s')).toBeUndefined()
    fc.assert(fc.property(fc.nat(), (n) => parseSize(`${n}`) === n && parseDuration(`${n}ms`) === n))
    fc.assert(fc.property(fc.string(), (s) => {
      const v = parseSize(s)
      return v === undefined || (Number.isInteger(v) && v >= 0)
    }))
  })
})
