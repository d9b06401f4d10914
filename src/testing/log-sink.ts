import { Writable } from 'node:stream'
import pino from 'pino'

/** One line the host or an extension logged, as pino wrote it. */
export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

/** A pino logger whose lines are kept in `lines` (and not printed): tests read what was logged. */
export function capturingLogger(level: string): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as LogLine)
      done()
    },
  })
  return { logger: pino({ level }, sink), lines }
}
