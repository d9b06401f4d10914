import { writeSync } from 'node:fs'
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { LogSettings, ResidentConfig } from '../config/types.ts'

type SonicBoom = ReturnType<typeof pino.destination> & { readonly destroyed?: boolean; readonly fd?: number }

/**
 * Buffered asynchronous destinations, as nginx's `access_log … buffer= flush=`: lines gather in
 * memory up to `log.buffer` bytes and are written without blocking the request that logged them;
 * a timer writes what waits after `log.flushInterval`, and the rest is written synchronously on exit.
 *
 * Lines gather here as strings in an array, and sonic-boom (pino's destination: partial writes,
 * EAGAIN, reopening, synchronous flushing) gets one Buffer per `log.buffer` bytes rather than a
 * Buffer per line. (In its string mode sonic-boom measures the UTF-8 length of the whole pending
 * string on every write, ≈ 20 µs a line with a 64 KB buffer; handing it lines as Buffers fixed
 * that. Gathering here saves a Buffer per line on top, and lets the exit handler write what waits
 * in order; in a CPU-time A/B the whole access line, pino's serialisation included, costs
 * ≈ 3 µs either way — see docs/evaluators/overhead.md.)
 */
interface Open { stream: SonicBoom; timer: NodeJS.Timeout | null; file: string | null; drain: () => void }
const open = new Set<Open>()

function bufferedDestination(settings: LogSettings): DestinationStream {
  const stream: SonicBoom = pino.destination({
    dest: settings.file ?? 1,
    sync: false,
    contentMode: 'buffer',
    minLength: 0,
    maxWrite: Math.max(16 * 1024, settings.buffer * 2),
    mkdir: settings.file !== null,
    append: true,
  })
  const write = stream.write.bind(stream) as unknown as (b: Buffer) => boolean
  let parts: string[] = []
  // Characters, not bytes: a buffer of non-ASCII lines is written a little past log.buffer bytes.
  let pending = 0
  const drain = () => {
    if (pending === 0 || stream.destroyed) return
    const out = parts.length === 1 ? parts[0]! : parts.join('')
    parts = []
    pending = 0
    write(Buffer.from(out))
  }
  const entry: Open = { stream, file: settings.file, timer: null, drain }
  if (settings.buffer > 0) {
    entry.timer = setInterval(drain, settings.flushInterval)
    entry.timer.unref()
  }
  open.add(entry)
  // On exit nothing asynchronous runs again: what sonic-boom holds is written synchronously (pino
  // does that too), then what waits here, after it, in order.
  const onExit = () => {
    if (stream.destroyed) return
    try { stream.flushSync() } catch { /* not open yet, or a write in flight: nothing more to do */ }
    const fd = stream.fd ?? -1
    if (pending > 0 && fd >= 0) writeAllSync(fd, Buffer.from(parts.join('')))
    parts = []
    pending = 0
  }
  process.on('exit', onExit)
  stream.on('close', () => { if (entry.timer) clearInterval(entry.timer); open.delete(entry); process.off('exit', onExit) })
  if (settings.buffer === 0) return { write: (line: string) => write(Buffer.from(line)) }
  const limit = settings.buffer
  return {
    write: (line: string) => {
      parts.push(line)
      pending += line.length
      if (pending >= limit) drain()
      return true
    },
  }
}

/** Writes all of `buf` synchronously, through partial writes and a full pipe (EAGAIN), giving up after about a second. */
function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0
  for (let tries = 0; off < buf.length && tries < 1000;) {
    try {
      off += writeSync(fd, buf, off)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return
      tries++
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
    }
  }
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
    if (e.file !== null && !e.stream.destroyed) { e.drain(); e.stream.reopen(); n++ }
  }
  return n
}

/**
 * Writes every buffered line and waits for the writes (before a deliberate exit). sonic-boom's
 * own flush(cb) answers at once when it writes eagerly (minLength 0, as here), so this waits for
 * its 'drain', which it emits when nothing is left to write.
 */
export async function flushLogs(): Promise<void> {
  await Promise.all([...open].map((e) => new Promise<void>((resolve) => {
    const stream = e.stream as SonicBoom & { _writing?: boolean }
    if (stream.destroyed) { resolve(); return }
    e.drain()
    if (!stream._writing) { resolve(); return }
    const done = () => { stream.off('drain', done); stream.off('error', done); stream.off('close', done); resolve() }
    stream.on('drain', done)
    stream.on('error', done)
    stream.on('close', done)
  })))
}
