export interface ExtensionSettings {
  /** Passed to the extension as `this.host.config`. */
  config: Record<string, unknown>
}

/** One filter's settings: `filters.modules.<name>`. */
export interface FilterSettings {
  /** Passed to the filter as `this.host.config`. */
  config: Record<string, unknown>
  /** An npm package serving as this filter (its resolved entry file), instead of a file in filtersDir. */
  entry: string | null
  /** false skips the filter (a file in filtersDir is loaded unless disabled). */
  enabled: boolean
}

export interface FiltersConfig {
  /** Filter names in the order they run within one priority; unlisted ones follow by name. */
  order: string[]
  modules: Record<string, FilterSettings>
}

export interface ResidentConfig {
  host: string
  port: number
  /** Absolute folder of extensions. */
  extensionsDir: string
  /** Absolute folder of filters. */
  filtersDir: string
  /** Largest request body in bytes (413 beyond). */
  bodyLimit: number
  /** A command's deadline in ms (504 beyond); 0 = none. */
  requestTimeout: number
  /** How long shutdown waits for in-flight requests, in ms. */
  drainTimeout: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Development mode: stacks in error bodies, pretty logs. */
  development: boolean
  admin: { token: string | null }
  /** Per-extension settings, by extension name. */
  extensions: Record<string, ExtensionSettings>
  /** The filter chain: order and per-filter settings. */
  filters: FiltersConfig
  /** Where the config was read from, if a file. */
  file: string | null
}
