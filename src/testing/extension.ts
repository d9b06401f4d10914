import type { Extension } from '../sdk/extension.ts'
import type { ExtensionHost, Logger, UnloadReason } from '../sdk/types.ts'
import { createHostHandle } from '../loader/host-handle.ts'
import { capturingLogger, type LogLine } from './log-sink.ts'

export interface ExtensionUnderTest<T> {
  /** The instance, constructed with a real host handle and initialised (`init()` has run). */
  extension: T
  /** The handle it was given: `config`, `log`, timers, `onDispose`. */
  host: ExtensionHost
  /** Timers and intervals it made through `this.host` that are still pending. */
  readonly activeTimers: number
  /** What it logged through `this.host.log`. */
  readonly logs: readonly LogLine[]
  /** Unloads it as the host would: `dispose(reason)`, then its timers cleared and onDispose callbacks run. */
  close(reason?: UnloadReason): Promise<void>
}

export interface CreateExtensionOptions {
  /** The extension's name (default: the class's name in lower case). */
  name?: string
  /** What it sees as `this.host.config`. */
  config?: Record<string, unknown>
  /** The folder `this.host.dir` names (default: the current folder). */
  dir?: string
  /** Log level of `this.host.log` (default `debug`: everything is captured). */
  logLevel?: string
}

/**
 * Constructs one extension for a unit test, with the handle the host would give it; `close()`
 * unloads it the same way (timers cleared, onDispose callbacks run).
 * @example
 * const { extension, close } = await createExtension(Hello, { config: { greeting: 'hi' } })
 * expect(extension.greet({ name: 'you' })).toEqual({ hello: 'you' })
 * await close()
 */
export async function createExtension<T extends Extension>(
  Class: new (host: ExtensionHost) => T, o: CreateExtensionOptions = {},
): Promise<ExtensionUnderTest<T>> {
  const { logger, lines } = capturingLogger(o.logLevel ?? 'debug')
  const name = o.name ?? Class.name.toLowerCase()
  const owned = createHostHandle({
    name, generation: 1, dir: o.dir ?? process.cwd(), config: o.config ?? {},
    log: logger.child({ extension: name }) as unknown as Logger,
  })
  const extension = new Class(owned.handle)
  try {
    if (typeof extension.init === 'function') await extension.init()
  } catch (e) {
    await owned.release()
    throw e
  }
  let closed = false
  return {
    extension,
    host: owned.handle,
    get activeTimers() { return owned.activeTimers },
    logs: lines,
    async close(reason = 'shutdown') {
      if (closed) return
      closed = true
      try {
        if (typeof extension.dispose === 'function') await extension.dispose(reason)
      } finally {
        await owned.release()
      }
    },
  }
}
