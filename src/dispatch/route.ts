import { ResidentError } from '../errors.ts'
import { isModuleName } from '../loader/discover.ts'
import type { CommandInfo, CommandTable } from './commands.ts'

export interface Target {
  extension: string
  /** The command segment as written, or null for the default command. */
  command: string | null
  path: string
  query: string
}

const COMMAND = /^[A-Za-z$][\w$]{0,127}$/

function decode(segment: string): string {
  if (!segment.includes('%')) return segment
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new ResidentError('RES_ERR_BAD_REQUEST', 'the URL has an invalid percent-encoding')
  }
}

/**
 * `/<extension>/<command>?query` → target, or null when the path cannot name a command (more
 * segments, a name outside [a-z0-9-], a command that is not an identifier). Names are decoded
 * before they are checked, so `%2e%2e`, `%2f` and NUL never reach a lookup.
 */
export function parseTarget(url: string): Target | null {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q + 1)
  if (path.charCodeAt(0) !== 47 /* / */) return null
  const parts = path.slice(1).split('/')
  if (parts.length > 2 && !(parts.length === 3 && parts[2] === '')) return null
  const extension = decode(parts[0]!).toLowerCase()
  if (!isModuleName(extension)) return null
  const raw = parts.length > 1 ? decode(parts[1]!) : ''
  if (raw === '') return { extension, command: null, path, query }
  if (!COMMAND.test(raw)) return null
  return { extension, command: raw, path, query }
}

/** The command a target names, case-insensitively; null when there is none. */
export function findCommand(table: CommandTable, command: string | null): CommandInfo | null {
  const key = command === null ? table.defaultCommand : command.toLowerCase()
  if (key === null) return null
  return Object.prototype.hasOwnProperty.call(table.commands, key) ? table.commands[key]! : null
}
