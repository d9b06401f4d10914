// The seed's claims about the isolation tiers, and the targets the mode issues set, each checked
// against what this run measured.
import type { TargetResult } from './run.ts'

export interface Claim {
  claim: string
  /** What this run measured, in words and figures; why it could not be checked otherwise. */
  measured: string
  /** null when the run lacks what the claim compares. */
  holds: boolean | null
}

const x = (n: number) => `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`

function ratio(results: TargetResult[], a: string, b: string): { value: number; paired: number | null } | string {
  const ra = results.find((r) => r.name === a)
  const rb = results.find((r) => r.name === b)
  if (!ra || !rb) return `not measured: run with both ${a} and ${b}`
  if (ra.reqPerSec === null || rb.reqPerSec === null) {
    const bad = ra.reqPerSec === null ? ra : rb
    return `not measured: ${bad.name} ${bad.skipped ?? 'had no clean round'}`
  }
  const paired: number[] = []
  for (const s of ra.rounds) {
    const t = rb.rounds.find((y) => y.round === s.round)
    if (t && t.reqPerSec > 0 && s.errors + s.non2xx + t.errors + t.non2xx === 0) paired.push(s.reqPerSec / t.reqPerSec)
  }
  paired.sort((p, q) => p - q)
  return { value: ra.reqPerSec / rb.reqPerSec, paired: paired.length ? paired[paired.length >> 1]! : null }
}

function atLeast(results: TargetResult[], claim: string, a: string, b: string, min: number): Claim {
  const r = ratio(results, a, b)
  if (typeof r === 'string') return { claim, measured: r, holds: null }
  return {
    claim,
    measured: `${a} served ${x(r.value)} the requests per second of ${b}${r.paired === null ? '' : ` (paired ${x(r.paired)})`}`,
    holds: r.value >= min,
  }
}

export function checkClaims(results: TargetResult[]): Claim[] {
  const claims: Claim[] = [
    atLeast(results, 'FastCGI is at least 5× faster than CGI', 'fastcgi', 'cgi', 5),
  ]
  // "About 10×": within a factor of 1.5 either side.
  const uw = ratio(results, 'nginx → uwsgi-worker', 'nginx → fcgi-worker')
  claims.push(typeof uw === 'string'
    ? { claim: 'the uwsgi protocol is about 10× faster than FastCGI', measured: uw, holds: null }
    : {
        claim: 'the uwsgi protocol is about 10× faster than FastCGI',
        measured: `nginx → uwsgi-worker served ${x(uw.value)} the requests per second of nginx → fcgi-worker, the same extension behind each`,
        holds: uw.value >= 10 / 1.5 && uw.value <= 10 * 1.5,
      })
  const fc = ratio(results, 'inprocess', 'fastcgi')
  const cg = ratio(results, 'inprocess', 'cgi')
  if (typeof fc === 'string' || typeof cg === 'string') {
    claims.push({ claim: 'in-process beats both', measured: typeof fc === 'string' ? fc : cg as string, holds: null })
  } else {
    claims.push({ claim: 'in-process beats both', measured: `in-process served ${x(fc.value)} fastcgi and ${x(cg.value)} cgi`, holds: fc.value > 1 && cg.value > 1 })
  }
  claims.push(
    atLeast(results, 'target: worker ≥ 0.6× in-process', 'worker', 'inprocess', 0.6),
    atLeast(results, 'target: nginx → fcgi-worker ≥ 1.0× nginx → php-fpm', 'nginx → fcgi-worker', 'nginx + php-fpm', 1),
    atLeast(results, 'target: cgi ≥ 1.0× lighttpd + node CGI', 'cgi', 'lighttpd + node CGI', 1),
    atLeast(results, 'target: in-process ≥ 300× cgi', 'inprocess', 'cgi', 300),
  )
  return claims
}
