import { createRequire } from 'node:module'

// A built-in module loaded the first time it is needed, not when this module is. Node's start-up
// snapshot holds few modules beyond its own bootstrap: node:stream (17 internal modules),
// node:worker_threads and node:inspector each cost a process a few ms to load, which the cgi
// mode's runner, a process per request, pays on every request if any module imports them
// eagerly. `require` resolves a built-in the same from anywhere, so the base path is moot: this
// works in the ES modules under dist/ and in the runner's CommonJS bundle alike.
const requireBuiltin = createRequire('/')

export function lazyBuiltin<T>(id: string): () => T {
  let mod: T | undefined
  return () => (mod ??= requireBuiltin(id) as T)
}
