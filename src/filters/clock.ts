// The access entry's `time` for every request: `new Date().toISOString()` costs about half a
// microsecond, so the date and time up to the second are formatted once a second (as nginx caches
// its time strings per event-loop turn) and the milliseconds appended.

let second = Number.NaN
let prefix = ''

/** The current time as `toISOString()` gives it (`2026-12-03T15:07:15.123Z`). */
export function isoNow(now: number = Date.now()): string {
  const ms = now % 1000
  const s = now - ms
  if (s !== second) {
    second = s
    prefix = new Date(s).toISOString().slice(0, 20)
  }
  return prefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z'
}
