import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { LogSettings, ResidentConfig } from '../config/types.ts'

type SonicBoom = ReturnType<typeof pino.destination> & { readonly destroyed?: boolean }

/**
 * Buffered asynchronous destinations, as nginx's `access_log … buffer= flush=`: lines gather in
 * memory up to `log.buffer` bytes and are written without blocking the request that logged them;
 * a timer writes what waits after `log.flushInterval`, and pino writes the rest synchronously on exit.
 */
const open = new Set<{ stream: SonicBoom; timer: NodeJS.Timeout | null; file: string | null }>()

function bufferedDestination(settings: LogSettings): DestinationStream {
  const stream: SonicBoom = pino.destination({
    dest: settings.file ?? 1,
    sync: false,
    // Buffers, not strings: in its string mode sonic-boom measures the whole pending string's
    // UTF-8 length on every write, which made each line cost more the larger the buffer
    // (≈ 20 µs a line with 64 KB). With Buffers it keeps the lengths as numbers.
    contentMode: 'buffer',
    minLength: settings.buffer,
    // sonic-boom writes at most maxWrite bytes at a time and wants the buffer below it.
    maxWrite: Math.max(16 * 1024, settings.buffer * 2),
    mkdir: settings.file !== null,
    append: true,
  })
  const entry = { stream, file: settings.file, timer: null as NodeJS.Timeout | null }
  if (settings.buffer > 0) {
    entry.timer = setInterval(() => { if (!stream.destroyed) stream.flush() }, settings.flushInterval)
    entry.timer.unref()
  }
  open.add(entry)
  stream.on('close', () => { if (entry.timer) clearInterval(entry.timer); open.delete(entry) })
  const write = stream.write.bind(stream) as unknown as (b: Buffer) => boolean
  return { write: (line: string) => write(Buffer.from(line)) }
}

/** JSON logs through a buffered destination; pino-pretty when asked (dev, or a terminal), installed, and no log file is set. */
export function createLogger(config: Pick<ResidentConfig, 'logLevel'> & { log?: LogSettings }, pretty: boolean): PinoLogger {
  const settings = config.log ?? { file: null, buffer: 0, flushInterval: 1000 }
  if (pretty && settings.file === null) {
    try {
      return pino({
        level: config.logLevel,
        transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: false } },
      })
    } catch { /* pino-pretty missing: fall back to JSON */ }
  }
  return pino({ level: config.logLevel }, bufferedDestination(settings))
}

/** SIGUSR1 (after logrotate moved the file): log files are opened again by name. Standard output is left alone. */
export function reopenLogFiles(): number {
  let n = 0
  for (const e of open) {
    if (e.file !== null && !e.stream.destroyed) { e.stream.reopen(); n++ }
  }
  return n
}

/** Writes every buffered line and waits for the writes (before a deliberate exit). */
export async function flushLogs(): Promise<void> {
  await Promise.all([...open].map((e) => new Promise<void>((resolve) => {
    if (e.stream.destroyed) { resolve(); return }
    e.stream.flush((err) => { if (err) { try { e.stream.flushSync() } catch { /* nothing more to do */ } } resolve() })
  })))
}
