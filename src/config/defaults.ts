import { defaultWorker } from './modes.ts'
import type { PoolSettings, ResidentConfig } from './types.ts'

/** The fastcgi mode's pool unless `pool` or `extensions.<name>.pool` says otherwise. */
export const POOL_DEFAULTS: PoolSettings = {
  pm: 'dynamic', maxChildren: 4, startServers: 2, minSpareServers: 1, maxSpareServers: 3, processIdleTimeout: 10_000,
  maxRequests: 0, terminateTimeout: 0, slowlogTimeout: 0, hangGrace: 1000, emergencyRestartThreshold: 10, emergencyRestartInterval: 60_000,
}
import { CGI_DEFAULTS } from './cgi.ts'

export const DEFAULT_CONFIG_FILE = 'resident.config.json'

export const defaults: Omit<ResidentConfig, 'extensionsDir' | 'filtersDir' | 'file'> & { extensionsDir: string; filtersDir: string } = {
  host: '127.0.0.1',
  port: 3000,
  extensionsDir: './extensions',
  filtersDir: './filters',
  bodyLimit: 1024 * 1024,
  parameterLimit: 1000,
  requestTimeout: 30_000,
  drainTimeout: 30_000,
  headersTimeout: 15_000,
  bodyTimeout: 30_000,
  keepAliveTimeout: 15_000,
  sendTimeout: 30_000,
  maxConnections: 1024,
  requestIdHeader: null,
  logLevel: 'info',
  development: false,
  sealPrototypes: true,
  faultTracing: 'context',
  admin: { token: null, hosts: [] },
  mode: 'inprocess',
  worker: defaultWorker,
  pool: POOL_DEFAULTS,
  extensions: {},
  filters: { order: [], modules: {} },
  fastcgi: { apps: {} },
  cgi: { bin: [], interpreters: {}, ...CGI_DEFAULTS },
  idleTimeout: 10 * 60_000,
  memory: { budget: null, highWatermark: 0.85, lowWatermark: 0.7, checkInterval: 5_000, minResidency: 1_000 },
  limits: { maxInFlight: 1024, heapShed: 0.9, pipeline: 8, jsonDepth: 64, jsonNodes: 100_000, paramLength: 64 * 1024, streamTimeout: null },
  unload: { maxDeclines: 3, collectionGrace: 10_000, esbuildIdle: 30_000 },
  log: { file: null, buffer: 64 * 1024, flushInterval: 1_000 },
  slowLog: { threshold: 0 },
  workers: 0,
  rapidFail: { maxFailures: 3, window: 60_000, backoff: 5_000, maxBackoff: 5 * 60_000 },
}
