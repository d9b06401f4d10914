import { lazyBuiltin } from './builtin.ts'

// The `process` an extension's (or filter's) own code sees. In-process extensions are trusted code
// (see docs/operators/security.md): this is a guard rail against the calls that would end or
// reconfigure the whole host by accident, not a sandbox. Packages the code imports, and
// `globalThis.process`, are the real thing.

/** Thrown to extension code that calls what would end or reconfigure the host. */
export class ProcessGuardError extends Error {
  constructor(call: string, why: string) {
    super(`${call} is not available to extension code: ${why}. The host runs every extension; to fail a request, throw (an HttpError for a status of your choice).`)
    this.name = 'ProcessGuardError'
  }
}

const ENDS = 'it would end the host and every extension in it'
const RECONFIGURES = 'it would change the whole host process'

const deny = (call: string, why: string) => () => { throw new ProcessGuardError(call, why) }

function ownsPid(pid: unknown): boolean {
  const n = Number(pid)
  // 0 and negative pids signal a process group, which includes the host.
  return n === process.pid || n === 0 || n < 0 || n === -process.pid
}

const overrides: Record<string | symbol, unknown> = {
  exit: deny('process.exit()', ENDS),
  reallyExit: deny('process.reallyExit()', ENDS),
  abort: deny('process.abort()', ENDS),
  chdir: deny('process.chdir()', `${RECONFIGURES}'s working directory`),
  setuid: deny('process.setuid()', RECONFIGURES),
  setgid: deny('process.setgid()', RECONFIGURES),
  seteuid: deny('process.seteuid()', RECONFIGURES),
  setegid: deny('process.setegid()', RECONFIGURES),
  setgroups: deny('process.setgroups()', RECONFIGURES),
  initgroups: deny('process.initgroups()', RECONFIGURES),
  umask(mask?: unknown) {
    if (mask !== undefined) throw new ProcessGuardError('process.umask(mask)', `${RECONFIGURES}'s file mode mask`)
    return process.umask()
  },
  kill(pid: number, signal?: string | number) {
    if (ownsPid(pid)) throw new ProcessGuardError('process.kill() of the host', ENDS)
    return process.kill(pid, signal)
  },
  // The raw call under kill(), reachable by name.
  _kill(pid: number, signal: number) {
    if (ownsPid(pid)) throw new ProcessGuardError('process._kill() of the host', ENDS)
    return (process as unknown as { _kill(pid: number, signal: number): number })._kill(pid, signal)
  },
  // One capture callback per process: setting it would replace the host's fault handling, and
  // every later fault would vanish into the extension's callback.
  setUncaughtExceptionCaptureCallback: deny('process.setUncaughtExceptionCaptureCallback()', 'it would replace the host\'s fault handling'),
  // The other way to the process module without an import.
  getBuiltinModule(id: string) {
    if (isProcessModule(id)) return guardedProcess
    return (process as unknown as { getBuiltinModule(id: string): unknown }).getBuiltinModule(id)
  },
}

/** Whether a module specifier names Node's `process` module. */
export function isProcessModule(id: string): boolean {
  return id === 'process' || id === 'node:process'
}

// Events whose listeners are the host's own: emitting one would stop the host (SIGTERM, SIGINT),
// and removing all of its listeners would take away its fault handling and graceful stop.
const HOST_EVENTS = /^(SIG[A-Z0-9]+|exit|beforeExit|uncaughtException|unhandledRejection)$/

function hostEvent(event: unknown): boolean {
  return typeof event === 'string' && HOST_EVENTS.test(event)
}

overrides.emit = function emit(event: string | symbol, ...args: unknown[]) {
  if (hostEvent(event)) throw new ProcessGuardError(`process.emit('${String(event)}')`, 'the host listens for it to stop or to handle a fault')
  return process.emit(event as 'warning', ...(args as [Error]))
}
overrides.removeAllListeners = function removeAllListeners(event?: string | symbol) {
  if (event === undefined || hostEvent(event)) throw new ProcessGuardError('process.removeAllListeners() of the host\'s events', 'it would take away the host\'s graceful stop and fault handling')
  process.removeAllListeners(event)
  return guardedProcess
}

// In a worker thread (the worker mode) process.exit() and exitCode end only that thread, which the
// host replaces: that is the isolation the mode exists for. abort() and kill() of the pid still
// reach the whole process, so they stay guarded there too. Asked only when an extension reaches
// for one of them (the cgi mode's runner does not load node:worker_threads otherwise).
const workerThreads = lazyBuiltin<typeof import('node:worker_threads')>('node:worker_threads')
const WORKER_ALLOWS = new Set<string | symbol>(['exit', 'reallyExit'])
const inWorker = () => !workerThreads().isMainThread

/** One shared guarded `process`: every other property reads and writes through to the real one. */
export const guardedProcess: NodeJS.Process = new Proxy(process, {
  get(target, key) {
    if (Object.prototype.hasOwnProperty.call(overrides, key) && !(WORKER_ALLOWS.has(key) && inWorker())) return overrides[key]
    return Reflect.get(target, key, target)
  },
  set(target, key, value) {
    if (key === 'exitCode' && !inWorker()) throw new ProcessGuardError(`setting process.${String(key)}`, `${RECONFIGURES}'s exit code`)
    return Reflect.set(target, key, value, target)
  },
})

/**
 * What importing `node:process` (or `process`) gives the extension's own code: the guarded
 * `process` as the default export and its members as named exports, read when used, as Node's own
 * namespace has them. Without it `import process from 'node:process'`, a common style, would hand
 * the real `exit()` back.
 */
export const guardedProcessModule: Record<string, unknown> = (() => {
  const ns: Record<string, unknown> = Object.create(null)
  Object.defineProperty(ns, 'default', { value: guardedProcess, enumerable: true })
  for (const key of Object.keys(process)) {
    Object.defineProperty(ns, key, { get: () => (guardedProcess as unknown as Record<string, unknown>)[key], enumerable: true })
  }
  Object.defineProperty(ns, Symbol.toStringTag, { value: 'Module' })
  return Object.freeze(ns)
})()
