import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { resolveConfig } from '../config/load.ts'
import { buildServer, type ResidentServer } from '../server/app.ts'
import { capturingLogger, type LogLine } from './log-sink.ts'

export interface TestHostOptions {
  /** A folder of extensions, or `{ name: file }` (paths relative to `cwd`). */
  extensions?: string | Record<string, string>
  /** A folder of filters, or `{ name: file }`; they run in the order the config gives, as when served. */
  filters?: string | Record<string, string>
  /** Anything `resident.config.json` may hold (`extensions.<name>.config`, `filters.order`, limits…). */
  config?: Record<string, unknown>
  /** The folder relative paths start from (default: the current folder). */
  cwd?: string
}

export interface InjectRequest {
  method?: string
  /** Path and query: `/hello/greet?name=you`. */
  url: string
  headers?: Record<string, string>
  /** A string, bytes, or an object (sent as JSON). */
  body?: string | Uint8Array | Record<string, unknown> | unknown[]
}

export interface InjectResponse {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  /** The body as text. */
  body: string
  json<T = unknown>(): T
}

export interface TestHost {
  /** Sends a request through the real server (filters, dispatcher, parse maps), without a port. */
  inject(request: InjectRequest | string): Promise<InjectResponse>
  /** What the host and the extensions logged so far. */
  readonly logs: readonly LogLine[]
  /** The server itself, for what the kit does not wrap. */
  readonly server: ResidentServer
  /** Unloads every extension and filter (dispose() runs) and frees the host. */
  close(): Promise<void>
}

/**
 * A real Resident host for tests: extensions and filters are built and loaded exactly as
 * `resident serve` would, and requests go through the same filters, dispatcher and parse maps,
 * only without a socket.
 * @example
 * const host = await createTestHost({ extensions: { hello: 'extensions/hello.ts' } })
 * const r = await host.inject('/hello/greet?name=you')
 * // r.statusCode === 200, r.json() → { hello: 'you' }
 * await host.close()
 */
export async function createTestHost(o: TestHostOptions = {}): Promise<TestHost> {
  const cwd = path.resolve(o.cwd ?? process.cwd())
  const empty: string[] = []
  const folder = (given: string | Record<string, string> | undefined, key: string) => {
    if (typeof given === 'string') return path.resolve(cwd, given)
    if (typeof o.config?.[key] === 'string') return path.resolve(cwd, o.config[key] as string)
    // Named files only: an empty folder of its own, so nothing else is picked up.
    const dir = mkdtempSync(path.join(tmpdir(), 'resident-testhost-'))
    empty.push(dir)
    return dir
  }
  const input: Record<string, unknown> = { logLevel: 'info', ...o.config }
  input.extensionsDir = folder(o.extensions, 'extensionsDir')
  input.filtersDir = folder(o.filters, 'filtersDir')
  // Every named extension gets its settings from the config's own validation (defaults included).
  if (typeof o.extensions === 'object') {
    const given = (o.config?.extensions ?? {}) as Record<string, unknown>
    input.extensions = { ...Object.fromEntries(Object.keys(o.extensions).map((n) => [n, {}])), ...given }
  }
  let config
  try {
    config = resolveConfig(input, { cwd })
  } catch (e) {
    for (const d of empty) rmSync(d, { recursive: true, force: true })
    throw e
  }
  if (typeof o.extensions === 'object') {
    for (const [name, file] of Object.entries(o.extensions)) {
      config.extensions[name] = { ...config.extensions[name]!, entry: path.resolve(cwd, file) }
    }
  }
  if (typeof o.filters === 'object') {
    for (const [name, file] of Object.entries(o.filters)) {
      const s = config.filters.modules[name] ?? { config: {}, entry: null, enabled: true }
      config.filters.modules[name] = { ...s, entry: path.resolve(cwd, file) }
    }
  }
  const { logger, lines } = capturingLogger(config.logLevel)
  let server: ResidentServer
  try {
    server = await buildServer(config, { logger })
  } catch (e) {
    for (const d of empty) rmSync(d, { recursive: true, force: true })
    throw e
  }
  let closed = false
  return {
    server,
    logs: lines,
    async inject(request) {
      const r = typeof request === 'string' ? { url: request } : request
      const body = r.body
      const json = body !== undefined && typeof body === 'object' && !(body instanceof Uint8Array)
      const res = await server.app.inject({
        method: (r.method ?? (body === undefined ? 'GET' : 'POST')) as 'GET',
        url: r.url,
        headers: { ...(json ? { 'content-type': 'application/json' } : {}), ...r.headers },
        payload: json ? JSON.stringify(body) : body as string | Buffer | undefined,
      })
      return { statusCode: res.statusCode, headers: res.headers, body: res.body, json: <T>() => res.json() as T }
    },
    async close() {
      if (closed) return
      closed = true
      await server.close()
      for (const d of empty) rmSync(d, { recursive: true, force: true })
    },
  }
}
