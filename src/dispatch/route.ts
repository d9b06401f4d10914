import { isModuleName } from '../config/names.ts'
import type { CommandInfo, CommandTable } from '../modes/commands.ts'
import { decodeName } from '../loader/url-path.ts'

export interface Target {
  extension: string
  /** The command segment as written, or null for the default command. */
  command: string | null
  path: string
  query: string
}

const COMMAND = /^[A-Za-z$][\w$]{0,127}$/


/**
 * `/<extension>/<command>?query` → target, or null when the path has more segments than that.
 * Names are decoded (so `%2e%2e`, `%2f` and NUL are seen as what they are) and must be ASCII
 * before the extension's is lower-cased (see url-path.ts), but are not yet checked further:
 * a lookup among resident extensions and their commands needs no check, since only valid names
 * are there; everything else must pass `isValidTarget` first (the dispatcher's slow path).
 */
export function parseTarget(url: string): Target | null {
  // A hand-written scan: this runs on every request and split() + a regex cost more.
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q + 1)
  if (path.charCodeAt(0) !== 47 /* / */) return null
  const slash = path.indexOf('/', 1)
  const extension = decodeName(slash === -1 ? path.slice(1) : path.slice(1, slash)).toLowerCase()
  let rest = slash === -1 ? '' : path.slice(slash + 1)
  const next = rest.indexOf('/')
  if (next !== -1) {
    if (next !== rest.length - 1) return null // more segments than /<extension>/<command>/
    rest = rest.slice(0, next)
  }
  const raw = decodeName(rest)
  return { extension, command: raw === '' ? null : raw, path, query }
}

/** Whether a target's names could name an extension (`[a-z0-9-]`) and a command (an identifier). */
export function isValidTarget(target: Target): boolean {
  return isModuleName(target.extension) && (target.command === null || COMMAND.test(target.command))
}

/** The command a target names, case-insensitively; null when there is none. */
export function findCommand(table: CommandTable, command: string | null): CommandInfo | null {
  const key = command === null ? table.defaultCommand : command.toLowerCase()
  if (key === null) return null
  return Object.prototype.hasOwnProperty.call(table.commands, key) ? table.commands[key]! : null
}
