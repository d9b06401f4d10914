/**
 * What the watcher reloads: an extension or a filter, the files its current build used, and how to
 * rebuild it. The config file is one too. Extensions come from the registry (src/watch/extensions.ts); a filter manager plugs in
 * the same way.
 */
export interface ReloadUnit {
  kind: 'extension' | 'filter' | 'config'
  name: string
  /** Absolute paths of the files its current build read (esbuild's metafile inputs). */
  inputs: readonly string[]
  /** When the build that read `inputs` started (ms since the epoch), if known. */
  builtAt?: number
  /**
   * Rebuilds it beside the running copy and swaps on success, or takes it out of service when its
   * entry is gone. Rejects (old copy still serving) when the new build or init() fails. `files`
   * are the changes that triggered it, for the log.
   */
  reload(files: string[]): Promise<void>
}

export const unitKey = (kind: ReloadUnit['kind'], name: string): string => `${kind}:${name}`
