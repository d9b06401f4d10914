import { EXTENSION_BASE, isBase } from '../sdk/brand.ts'
import { LIFECYCLE_METHODS } from '../sdk/extension.ts'
import type { CommandMap, CommandSpec, HttpMethod, ParamSpec } from '../sdk/params.ts'
import { own, ownCopy, ownStatic } from '../own.ts'
import { checkParamSpecs } from './params.ts'

export const DEFAULT_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST']
const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** One callable command: plain data, so a command table crosses threads and processes. */
export interface CommandInfo {
  /** The method's name as written. */
  name: string
  methods: string[]
  params: Record<string, ParamSpec> | null
  accepts: string[]
}

export interface CommandTable {
  /** Lower-cased name → command: lookup is case-insensitive, as ISAPI parse maps were. */
  commands: Record<string, CommandInfo>
  /** The lower-cased name of the default command, if any. */
  defaultCommand: string | null
}

/**
 * The commands of an extension class: the public methods it defines, walking its prototype chain
 * down to (not including) `Extension`. Never commands: the constructor, lifecycle methods, names
 * starting with `_`, accessors, statics, and anything from `Extension` or `Object.prototype`.
 * Throws with every problem in the parse map listed.
 */
export function commandTable(Handler: Function): CommandTable {
  const problems: string[] = []
  const commands: Record<string, CommandInfo> = Object.create(null)
  const specs = readCommandMap(Handler, problems)
  for (let proto = Handler.prototype as object | null; proto && !isBase(proto.constructor, EXTENSION_BASE) && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (LIFECYCLE_METHODS.has(key) || key.startsWith('_')) continue
      const d = Object.getOwnPropertyDescriptor(proto, key)!
      if (d.get || d.set || typeof d.value !== 'function') continue
      const lower = key.toLowerCase()
      const existing = commands[lower]
      if (existing) {
        if (existing.name !== key) problems.push(`commands "${existing.name}" and "${key}" differ only in case`)
        continue // a subclass's override wins
      }
      commands[lower] = toInfo(key, specs[key], problems)
    }
  }
  for (const name of Object.keys(specs)) {
    if (commands[name.toLowerCase()]?.name !== name) {
      problems.push(`static commands declares "${name}", which is not a public method`)
    }
  }
  let defaultCommand: string | null = null
  const declared = ownStatic(Handler, 'defaultCommand')
  if (declared !== undefined) {
    if (typeof declared !== 'string' || !commands[declared.toLowerCase()]) problems.push(`static defaultCommand names "${String(declared)}", which is not a command`)
    else defaultCommand = declared.toLowerCase()
  } else if (commands.index !== undefined) defaultCommand = 'index'
  if (problems.length > 0) throw new Error(`invalid extension ${Handler.name || '(anonymous class)'}:\n  - ${problems.join('\n  - ')}`)
  return { commands, defaultCommand }
}

function readCommandMap(Handler: Function, problems: string[]): CommandMap {
  const map = ownStatic(Handler, 'commands')
  if (map === undefined) return Object.create(null) as CommandMap
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    problems.push('static commands must be an object keyed by command name')
    return Object.create(null) as CommandMap
  }
  return ownCopy(map as CommandMap)
}

function toInfo(name: string, spec: CommandSpec | undefined, problems: string[]): CommandInfo {
  if (spec === undefined) return { name, methods: [...DEFAULT_METHODS], params: null, accepts: [] }
  if (typeof spec !== 'object' || spec === null) {
    problems.push(`commands.${name} must be an object`)
    return { name, methods: [...DEFAULT_METHODS], params: null, accepts: [] }
  }
  let methods = [...(own(spec, 'methods') as string[] | undefined ?? DEFAULT_METHODS)].map((m) => String(m).toUpperCase())
  for (const m of methods) if (!METHODS.has(m)) problems.push(`commands.${name}.methods: unknown HTTP method "${m}"`)
  if (methods.includes('GET') && !methods.includes('HEAD')) methods = [...methods, 'HEAD']
  const declared = own(spec, 'params')
  const params = declared === undefined ? null : ownParams(declared)
  if (declared !== undefined) problems.push(...checkParamSpecs(name, params ?? declared))
  const accepts = [...(own(spec, 'accepts') as string[] | undefined ?? [])].map((t) => String(t).toLowerCase())
  return { name, methods, params, accepts }
}

/**
 * The parse map's declarations copied into objects with no prototype, so that reading an absent
 * `default`, `min` or `items` on every request can never pick up a polluted `Object.prototype`.
 */
function ownParams(params: unknown): Record<string, ParamSpec> | null {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return null
  const out = Object.create(null) as Record<string, ParamSpec>
  for (const name of Object.keys(params)) {
    const spec = (params as Record<string, unknown>)[name]
    if (typeof spec !== 'object' || spec === null) { out[name] = spec as ParamSpec; continue }
    const copy = ownCopy(spec as ParamSpec)
    const items = own(spec, 'items')
    if (typeof items === 'object' && items !== null) (copy as { items: unknown }).items = ownCopy(items)
    out[name] = copy
  }
  return out
}
