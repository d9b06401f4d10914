import { AsyncLocalStorage } from 'node:async_hooks'

// Which generation of which extension or filter a piece of running code belongs to, so that an
// exception nobody caught can be laid at its door. Two ways to tell: the async context entered
// around the module's evaluation, init(), commands and host-handle callbacks (it follows every
// timer, promise and emitter created inside), and the compiled file name (`<entry>?gen=N`) in the
// error's stack, for what escapes the context (a queueMicrotask callback, say).

export interface Owner { kind: 'extension' | 'filter'; name: string; generation: number }

const context = new AsyncLocalStorage<Owner>()
const byFilename = new Map<string, Owner>()
// Once any code has run in the context, Node 20 calls the context's hook for every async resource
// the process creates (about eleven per HTTP request), whoever creates it: that is the price of
// tracing by context, and `stack` tracing does not pay it.
let tracing: 'context' | 'stack' = 'context'

/**
 * How faults are traced from now on (config `faultTracing`). Set it before any extension or
 * filter loads: code that already ran in the context keeps it.
 */
export function setFaultTracing(mode: 'context' | 'stack'): void {
  tracing = mode
}

/** Runs `fn` as code of `owner`: whatever it schedules stays traceable to it. */
export function runAs<R>(owner: Owner, fn: () => R): R {
  return tracing === 'context' ? context.run(owner, fn) : fn()
}

const callMethod = (fn: (a: unknown, b: unknown) => unknown, self: unknown, a: unknown, b: unknown) => fn.call(self, a, b)

/** `self.fn(a, b)` as code of `owner`, with no closure made per call (a command's hot path). */
export function callAs(owner: Owner, self: unknown, fn: (a: unknown, b: unknown) => unknown, a: unknown, b: unknown): unknown {
  return tracing === 'context' ? context.run(owner, callMethod, fn, self, a, b) : callMethod(fn, self, a, b)
}

/** Remembers that code compiled under `filename` belongs to `owner`; returns a function that forgets it. */
export function registerOwner(filename: string, owner: Owner): () => void {
  byFilename.set(filename, owner)
  return () => { byFilename.delete(filename) }
}

const FRAME = /([^\s()]+\?gen=\d+):\d+:\d+/g

/**
 * The owner of a fault: the async context it was raised in, else the first compiled module in its
 * stack. Undefined when neither says (then nobody can tell what state the process is in).
 */
export function ownerOf(fault: unknown): Owner | undefined {
  const current = context.getStore()
  if (current !== undefined) return current
  const stack = fault instanceof Error && typeof fault.stack === 'string' ? fault.stack : ''
  for (const m of stack.matchAll(FRAME)) {
    const owner = byFilename.get(m[1]!)
    if (owner !== undefined) return owner
  }
  return undefined
}
