import type { ExtensionHost, Logger, TimerHandle } from '../sdk/types.ts'
import { mapErrorStack } from './stack.ts'

export interface HostHandleOptions {
  name: string
  generation: number
  dir: string
  config: Record<string, unknown>
  log: Logger
}

/** The handle plus what only the host may do with it: release everything the extension made. */
export interface OwnedHostHandle {
  handle: ExtensionHost
  /** Active timers and intervals made through the handle. */
  readonly activeTimers: number
  /** Clears every timer, then runs the onDispose callbacks in reverse order. */
  release(): Promise<void>
}

/** Makes the `this.host` of one generation; everything made through it is released on unload. */
export function createHostHandle(o: HostHandleOptions): OwnedHostHandle {
  const timers = new Set<TimerHandle>()
  const disposers: Array<() => void | Promise<void>> = []
  let released = false
  const guard = (what: string, fn: () => void) => () => {
    try { fn() } catch (e) { o.log.error({ err: mapErrorStack(e) }, `${what} callback threw`) }
  }
  const handle: ExtensionHost = {
    name: o.name,
    generation: o.generation,
    dir: o.dir,
    config: Object.freeze({ ...o.config }),
    log: o.log,
    setTimeout(fn, ms) {
      if (released) throw new Error('this generation has been unloaded')
      const t: TimerHandle = globalThis.setTimeout(() => { timers.delete(t); guard('setTimeout', fn)() }, ms)
      timers.add(t)
      return t
    },
    setInterval(fn, ms) {
      if (released) throw new Error('this generation has been unloaded')
      const t = globalThis.setInterval(guard('setInterval', fn), ms)
      timers.add(t)
      return t
    },
    clearTimeout(t) { if (t !== undefined) { globalThis.clearTimeout(t); timers.delete(t) } },
    clearInterval(t) { if (t !== undefined) { globalThis.clearInterval(t); timers.delete(t) } },
    onDispose(fn) {
      if (typeof fn !== 'function') throw new TypeError('onDispose needs a function')
      disposers.push(fn)
    },
  }
  return {
    handle,
    get activeTimers() { return timers.size },
    async release() {
      if (released) return
      released = true
      for (const t of timers) { globalThis.clearTimeout(t); globalThis.clearInterval(t) }
      timers.clear()
      for (const fn of disposers.reverse()) {
        try { await fn() } catch (e) { o.log.error({ err: mapErrorStack(e) }, 'onDispose callback threw') }
      }
      disposers.length = 0
    },
  }
}
