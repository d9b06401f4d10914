import type { Mode } from './modes.ts'

/** The worker mode's pool of one extension: `worker` at the top level, `extensions.<name>.worker` over it. */
export interface WorkerSettings {
  /** Workers per extension; each keeps its own state, as the processes of a FastCGI pool do. */
  pool: number
  /** Node's `resourceLimits` for each worker (MB); reaching the heap limit replaces the worker. */
  resourceLimits: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; codeRangeSizeMb?: number; stackSizeMb?: number }
  /** ArrayBuffers and Buffers a worker may hold (bytes), which the heap limit does not cap; null = no limit. */
  maxExternal: number | null
  /** After a deadline, how long a worker gets to acknowledge the cancel before it is judged hung and replaced (ms). */
  hangGrace: number
}

export interface ExtensionSettings {
  /** Passed to the extension as `this.host.config`. */
  config: Record<string, unknown>
  /** Overrides the top-level idleTimeout for this extension (ms; 0 = never); null = inherit. */
  idleTimeout: number | null
  /** Where this extension runs; null = the top-level `mode`. */
  mode: Mode | null
  /** Its worker pool (the top-level `worker` with this extension's keys over it); null = the top-level one. */
  worker: WorkerSettings | null
  /** Its fastcgi-mode pool (the top-level `pool` with this extension's keys over it); null = the top-level one. */
  pool: PoolSettings | null
  /** A pool someone else runs: `extensions.<name>.fastcgi.address`; null = Resident runs the pool. */
  fastcgi: ExternalFastcgi | null
  /** The entry file when the extension is not a file in extensionsDir (`package`: an installed npm package). */
  entry: string | null
}

/** Memory-pressure eviction. Watermarks are fractions of each signal's limit (heap limit, budget, cgroup). */
export interface MemorySettings {
  /** RSS budget in bytes; null = watch only the heap and the cgroup limit. */
  budget: number | null
  /** Above this fraction of a limit, idle extensions are evicted, least recently used first… */
  highWatermark: number
  /** …until usage falls below this fraction. */
  lowWatermark: number
  /** How often memory and idle timeouts are checked, in ms (loads also trigger a check). */
  checkInterval: number
  /** A generation loaded less than this long ago (ms) is never evicted for memory. */
  minResidency: number
}

/** Unload behaviour shared by idle and memory unloads. */
export interface UnloadSettings {
  /** How many times canUnload() may decline an advisory unload before it is forced. */
  maxDeclines: number
  /** How long after an unload a generation must have been collected before a leak is suspected, in ms. */
  collectionGrace: number
  /** Stop esbuild's service process after this long without a build, in ms; 0 = keep it running. */
  esbuildIdle: number
}

/** Rapid-fail protection: `maxFailures` failed loads within `window` mark an extension failed. */
export interface RapidFailSettings {
  maxFailures: number
  window: number
  /** First wait before a retry, doubled after each failed retry up to maxBackoff (ms). */
  backoff: number
  maxBackoff: number
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

/** What one request may cost (see docs/operators/limits.md). */
export interface LimitSettings {
  /** Requests in progress in the whole process; past it new ones get a 503 with Retry-After. 0 = no limit. */
  maxInFlight: number
  /** Fraction of V8's heap limit above which new requests get a 503 with Retry-After; 1 = never. */
  heapShed: number
  /** Requests outstanding on one connection (the one being answered included); past it a 503 and the connection closes. */
  pipeline: number
  /** Deepest nesting of arrays and objects in a JSON body (400 past it). */
  jsonDepth: number
  /** Most arrays, objects and values in a JSON body (413 past it). */
  jsonNodes: number
  /** Longest parameter value a command sees unless its declaration's maxLength allows more (400 past it). */
  paramLength: number
  /** How long a streamed response may run from the request's arrival, in ms; null = requestTimeout; 0 = no limit. */
  streamTimeout: number | null
}

/** The CGI gateway: `cgi.bin` maps URL prefixes to folders of programs run per request. */
export interface CgiSettings {
  /** URL prefix (starting and ending with `/`) → absolute folder. */
  bin: Array<{ prefix: string; dir: string }>
  /** File extension (lower case, with its dot) → the program that runs such files (`.php` → `php-cgi`). */
  interpreters: Record<string, string>
  /** How long a program may run, in ms (504 and its process group killed beyond); 0 = no deadline. */
  timeout: number
  /** Largest response body in bytes. */
  maxOutput: number
  /** Largest response head in bytes. */
  maxHeaderSize: number
  /** Names of host environment variables passed to programs (an allow-list). */
  passEnv: string[]
  /** Fixed variables every program gets. */
  env: Record<string, string>
  /** Pass the Authorization header as HTTP_AUTHORIZATION (off by default, RFC 3875 §9.2). */
  passAuthorization: boolean
  /**
   * What starts programs (the gateway's and the cgi mode's): 'helper', a small process that forks
   * them so the server's event loop never does, or 'direct', the server's own fork.
   */
  spawn: 'helper' | 'direct'
}

/** The server log (and the access lines filters write to it): where, and how it is buffered. */
export interface LogSettings {
  /** A file to append to (reopened on SIGUSR1, for logrotate); null = standard output. */
  file: string | null
  /** Bytes gathered before a write (nginx's `access_log … buffer=`); 0 = every line written at once. */
  buffer: number
  /** Longest a buffered line waits before it is written, in ms (nginx's `flush=`). */
  flushInterval: number
}

/** The slow log (after PHP-FPM's request_slowlog_timeout). */
export interface SlowLogSettings {
  /** Requests holding an extension longer than this (ms) are logged at warn; 0 = off. */
  threshold: number
}

/** The fastcgi mode's process manager (PHP-FPM's pm settings): `pool`, `extensions.<name>.pool`. */
export type ProcessManager = 'static' | 'dynamic' | 'ondemand'

export interface PoolSettings {
  pm: ProcessManager
  maxChildren: number
  /** dynamic: workers started at first; default (minSpare + maxSpare) / 2. */
  startServers: number
  minSpareServers: number
  maxSpareServers: number
  /** ondemand: a worker idle this long is stopped (ms). */
  processIdleTimeout: number
  /** A worker is replaced after this many requests; 0 = never. */
  maxRequests: number
  /** A request running longer is stopped by killing its worker, and answers 504 (ms); 0 = never. */
  terminateTimeout: number
  /** A request running longer is logged as slow (ms); 0 = never. */
  slowlogTimeout: number
  /**
   * After a request was abandoned (deadline, client gone), how long its worker has to answer a
   * GET_VALUES before it is judged hung, killed and replaced (ms).
   */
  hangGrace: number
  /** This many crashes within emergencyRestartInterval restart the whole pool; 0 = never. */
  emergencyRestartThreshold: number
  emergencyRestartInterval: number
}


/** `extensions.<name>.fastcgi`: the addresses of fcgi-workers someone else runs. */
export interface ExternalFastcgi { addresses: string[]; maxConns: number | undefined }

/** One FastCGI app served under a URL prefix: `fastcgi.apps["/php/"]`. */
export interface FastcgiAppSettings {
  /** The URL prefix, starting and ending with "/". */
  prefix: string
  /** Backends: `unix:/path` or `host:port`; each request goes to the least busy healthy one. */
  addresses: string[]
  /** The folder of the app's scripts, as the backend sees it (SCRIPT_FILENAME = root + script). */
  root: string
  /** The script for a URL that names a folder. */
  index: string
  /** A path segment ending in one of these is the script; what follows is PATH_INFO. */
  scriptExtensions: string[]
  /** Extra parameters sent with every request. */
  params: Record<string, string>
  /** Connections per backend; undefined = the backend's FCGI_MAX_CONNS (else 8). */
  maxConns: number | undefined
  connectTimeout: number
  /** How long a backend that refused a connection is left out, in ms. */
  downTime: number
  /** How long the backend may take to start answering, in ms (504 beyond); 0 = none. */
  timeout: number
  bodyLimit: number
}

export interface FastcgiConfig {
  apps: Record<string, FastcgiAppSettings>
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
  /** Most parameters a query string or urlencoded body may carry (400 RES_ERR_TOO_MANY_PARAMETERS beyond). */
  parameterLimit: number
  /** A command's deadline in ms (504 beyond); 0 = none. */
  requestTimeout: number
  /** The request line and headers must arrive within this, in ms (408 after). */
  headersTimeout: number
  /** The body must arrive within this once the headers have, in ms (408 after). */
  bodyTimeout: number
  /** An idle keep-alive connection is closed after this, in ms. */
  keepAliveTimeout: number
  /** A response the client takes none of for this long, in ms, is ended by closing its connection. */
  sendTimeout: number
  /** Connections beyond this many are closed as soon as they are accepted; 0 = no limit. */
  maxConnections: number
  /** How long shutdown waits for in-flight requests, in ms. */
  drainTimeout: number
  /** Lower-case header whose valid value becomes the request id (logs, error bodies, filters, commands); null = always Resident's own. */
  requestIdHeader: string | null
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Development mode: stacks in error bodies, pretty logs. */
  development: boolean
  /** Object.prototype and Array.prototype made non-extensible at start, so no code can add keys to them (the CLI applies it). */
  sealPrototypes: boolean
  /**
   * How a fault outside any request is traced to the extension that raised it: `context` follows
   * everything its code schedules (AsyncLocalStorage; on Node 20 every async resource in the
   * process pays for it), `stack` reads only the error's stack. Process-wide: the last server built sets it.
   */
  faultTracing: 'context' | 'stack'
  /** The admin surface: `token` opens it beyond loopback; `hosts` are extra `Host` names it answers for. */
  admin: { token: string | null; hosts: string[] }
  /** Unload an extension after this long without requests, in ms; 0 = never. */
  idleTimeout: number
  memory: MemorySettings
  limits: LimitSettings
  unload: UnloadSettings
  rapidFail: RapidFailSettings
  /** Where extensions run unless `extensions.<name>.mode` says otherwise. */
  mode: Mode
  /** Worker-mode settings for every extension in worker mode (each may override them). */
  worker: WorkerSettings
  /** fastcgi-mode pool settings for every extension in that mode (each may override them). */
  pool: PoolSettings
  /** Per-extension settings, by extension name. */
  extensions: Record<string, ExtensionSettings>
  /** The filter chain: order and per-filter settings. */
  filters: FiltersConfig
  /** The CGI gateway. */
  cgi: CgiSettings
  log: LogSettings
  slowLog: SlowLogSettings
  /** Server processes: 0 = this one process; N ≥ 1 = a primary and N worker processes (node:cluster). */
  workers: number
  /** FastCGI apps Resident serves as a client, by URL prefix. */
  fastcgi: FastcgiConfig
  /** Where the config was read from, if a file. */
  file: string | null
}
