import pino, { type Logger as PinoLogger } from 'pino'
import type { ResidentConfig } from '../config/types.ts'

/** JSON logs in production; pino-pretty when asked (dev, or a terminal) and installed. */
export function createLogger(config: Pick<ResidentConfig, 'logLevel'>, pretty: boolean): PinoLogger {
  if (pretty) {
    try {
      return pino({
        level: config.logLevel,
        transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: false } },
      })
    } catch { /* pino-pretty missing: fall back to JSON */ }
  }
  return pino({ level: config.logLevel })
}
