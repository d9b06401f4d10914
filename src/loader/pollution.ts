// Object.prototype and Array.prototype are shared by every extension, every filter, the host and
// its packages (prom-client, fastify…): a key one extension adds to them shows up in every
// `for…in` in the process. Resident reads its own data by own keys (own.ts), but packages do not,
// so it also checks around the code that may pollute — a command, an evaluation with its init() —
// and undoes what that code added. In a clean process a check is one `for…in` over an empty object.

const probe = Object.preventExtensions({}) as Record<string, unknown>
const arrayProbe = Object.preventExtensions([]) as unknown[]

type Added = Set<string> | null

function polluted(): Added {
  let dirty = false
  for (const _ in probe) { dirty = true; break }
  if (!dirty) for (const _ in arrayProbe) { dirty = true; break }
  if (!dirty) return null
  const keys = new Set<string>()
  for (const k of Object.keys(Object.prototype)) keys.add(`Object.prototype.${k}`)
  for (const k of Object.keys(Array.prototype)) keys.add(`Array.prototype.${k}`)
  return keys
}

/** What is already on the shared prototypes before some code runs (null in a clean process). */
export function pollutionBefore(): Added {
  return polluted()
}

/** The keys added to the shared prototypes since `before`, removed; null when none were. */
export function undoPollution(before: Added): string[] | null {
  const now = polluted()
  if (now === null) return null
  const added = [...now].filter((k) => before === null || !before.has(k))
  if (added.length === 0) return null
  for (const k of added) {
    const [owner, key] = k.startsWith('Object.') ? [Object.prototype, k.slice(17)] : [Array.prototype, k.slice(16)]
    delete (owner as unknown as Record<string, unknown>)[key]
  }
  return added
}

/**
 * Makes Object.prototype and Array.prototype non-extensible for the rest of the process: adding a
 * key to either then throws a TypeError in the code that tries (strict code, which every bundled
 * extension is) or does nothing (sloppy code). The checks around commands cannot see pollution an
 * extension leaves for later, from a timer or a callback, and the packages in the host that walk
 * objects with `for…in` would then fail where no extension can be blamed; sealed, the attempt
 * itself is the fault, raised in the polluter's own context and traced to it. Existing members can
 * still be replaced, so a polyfill that patches one keeps working; one that adds a method fails to
 * load, saying so (and `sealPrototypes: false` allows it). Idempotent.
 */
export function sealSharedPrototypes(): void {
  Object.preventExtensions(Object.prototype)
  Object.preventExtensions(Array.prototype)
}

/** The error a command or an evaluation that polluted a shared prototype fails with. */
export function pollutionError(what: string, keys: string[]): Error {
  const e = new Error(`${what} added ${keys.join(', ')}, which every extension and the host share; removed`)
  e.name = 'PrototypePollutionError'
  return e
}
