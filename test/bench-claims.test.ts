import { describe, expect, it } from 'vitest'
import { checkClaims } from '../src/bench/claims.ts'
import { describeErrors, renderTable } from '../src/bench/report/table.ts'
import type { RoundSample, TargetResult } from '../src/bench/run.ts'

const round = (r: number, reqPerSec: number, errors = 0): RoundSample => ({
  round: r, reqPerSec, requests: reqPerSec * 3, p50: 1, p90: 2, p99: 3, errors, non2xx: 0, cpuPerRequestUs: 10, peakRssBytes: 1,
  errorKinds: errors > 0 ? { ECONNRESET: errors } : {},
})

const target = (name: string, rates: number[], kind: 'mode' | 'baseline' = 'mode'): TargetResult => {
  const rounds = rates.map((v, i) => round(i + 1, v))
  const sorted = [...rates].sort((a, b) => a - b)
  return {
    name, kind, reqPerSec: sorted[sorted.length >> 1]!, p50: 1, p90: 2, p99: 3, errors: 0, non2xx: 0, cpuPerRequestUs: 10,
    peakRssBytes: 1, coldStartMs: null, ratioToInprocess: null, pairedRatioToInprocess: null, dirtyRounds: [], rounds,
  }
}

const find = (claims: ReturnType<typeof checkClaims>, text: string) => claims.find((c) => c.claim.startsWith(text))!

describe('the seed\'s claims', () => {
  it('are checked against the measured ratios, with the paired ratio beside', () => {
    const claims = checkClaims([
      target('inprocess', [30000, 31000, 29000]),
      target('worker', [20000, 19000, 21000]),
      target('fastcgi', [6000, 6100, 5900]),
      target('cgi', [100, 90, 110]),
      target('nginx → fcgi-worker', [5000, 5000, 5000], 'baseline'),
      target('nginx → uwsgi-worker', [5500, 5500, 5500], 'baseline'),
      target('nginx + php-fpm', [20000, 20000, 20000], 'baseline'),
    ])
    expect(find(claims, 'FastCGI is at least 5×')).toMatchObject({ holds: true, measured: expect.stringMatching(/fastcgi served 60\.0× the requests per second of cgi \(paired 60\.0×\)/) })
    expect(find(claims, 'the uwsgi protocol')).toMatchObject({ holds: false, measured: expect.stringMatching(/1\.10×/) })
    expect(find(claims, 'in-process beats both')).toMatchObject({ holds: true })
    expect(find(claims, 'target: worker')).toMatchObject({ holds: true })
    expect(find(claims, 'target: nginx → fcgi-worker')).toMatchObject({ holds: false })
    expect(find(claims, 'target: in-process ≥ 300× cgi')).toMatchObject({ holds: true })
    expect(find(claims, 'target: cgi ≥ 1.0×')).toMatchObject({ holds: null, measured: expect.stringMatching(/not measured/) })
  })

  it('a target without a clean round makes its claims "not measured", with the reason', () => {
    const failed = { ...target('cgi', []), reqPerSec: null, skipped: 'failed in round 1: no such mode' }
    const claims = checkClaims([target('inprocess', [1000]), target('fastcgi', [500]), failed])
    expect(find(claims, 'FastCGI is at least 5×')).toEqual({ claim: 'FastCGI is at least 5× faster than CGI', holds: null, measured: 'not measured: cgi failed in round 1: no such mode' })
    expect(find(claims, 'in-process beats both').holds).toBeNull()
  })
})

describe('errors in the table', () => {
  it('names what went wrong in each target with dirty rounds, summed over its rounds', () => {
    const t = target('nginx + uWSGI', [100, 100], 'baseline')
    t.rounds = [round(1, 100, 2), round(2, 100, 3)]
    t.errors = 5
    t.dirtyRounds = [1, 2]
    expect(describeErrors(t)).toBe('ECONNRESET ×5')
    t.non2xx = 4
    expect(describeErrors(t)).toBe('ECONNRESET ×5, non-2xx answers ×4')
    const table = renderTable([target('inprocess', [200, 200]), t], [])
    expect(table).toContain('errors in nginx + uWSGI: ECONNRESET ×5, non-2xx answers ×4')
    expect(table).not.toContain('errors in inprocess')
  })
})
