import { EXTENSION_BASE } from './brand.ts'
import type { CommandMap } from './params.ts'
import type { ExtensionHost, UnloadReason } from './types.ts'

/**
 * The base of every extension. Each public method of a subclass is a command, served at
 * `/<extension>/<command>`; `index` (or the method `static defaultCommand` names) serves `/<extension>/`.
 * @example
 * export default class Hello extends Extension {
 *   greet({ name }: { name: string }) { return { hello: name } }
 * }
 */
export abstract class Extension {
  static readonly [EXTENSION_BASE] = true
  /** The parse map: per-command parameters, methods and accepted content types. */
  static commands?: CommandMap
  /** The command `/<extension>/` runs when there is no `index` method. */
  static defaultCommand?: string

  readonly host: ExtensionHost

  constructor(host: ExtensionHost) {
    this.host = host
  }

  /** Runs once per load, before the first request; may be async. A throw fails the load. */
  init?(): void | Promise<void>
  /** Runs when this generation is retired (idle, memory, reload, admin, shutdown). */
  dispose?(reason: UnloadReason): void | Promise<void>
  /** Advisory unloads (idle, memory) ask first; answer false to stay a little longer. */
  canUnload?(reason: UnloadReason): boolean
  /** Hot reload: what the next generation should receive through `importState`. */
  exportState?(): unknown
  /** Hot reload: receives what the previous generation's `exportState` returned. */
  importState?(state: unknown): void | Promise<void>
}

/** Names that are never commands, whatever a URL says. */
export const LIFECYCLE_METHODS: ReadonlySet<string> = new Set([
  'constructor', 'init', 'dispose', 'canUnload', 'exportState', 'importState',
])
