import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { resolveConfig, type ConfigInput } from '../../src/config/load.ts'
import { buildServer, type ResidentServer, type ServerOptions } from '../../src/server/app.ts'

export interface LogLine { level: number; msg: string; [k: string]: unknown }

export interface TestServer {
  server: ResidentServer
  dir: string
  extensionsDir: string
  filtersDir: string
  logs: LogLine[]
  inject: ResidentServer['app']['inject']
  /** Writes (or overwrites) extensions/<file>. */
  writeExtension(file: string, code: string): string
  writeFilter(file: string, code: string): string
  /** Listens on an ephemeral loopback port and returns the base URL. */
  listen(): Promise<string>
  close(): Promise<void>
}

/**
 * A real Resident server over a fresh temporary folder of extensions and filters.
 * Files are given as { 'calc.ts': source }. Logs are captured in `logs`.
 */
export async function startTestServer(o: {
  extensions?: Record<string, string>
  filters?: Record<string, string>
  config?: ConfigInput
  /** Put the folder inside the repository, so extensions can import its node_modules. */
  inRepo?: boolean
  /** Keep the filter hooks without filters at start-up, as resident dev does. */
  filterHooks?: boolean
  /** Ready-made executors in place of the built-in ones, by mode. */
  executors?: ServerOptions['executors']
} = {}): Promise<TestServer> {
  const parent = o.inRepo ? path.resolve(import.meta.dirname, '../../.tmp-test') : tmpdir()
  mkdirSync(parent, { recursive: true })
  const dir = mkdtempSync(path.join(parent, 'resident-test-'))
  const extensionsDir = path.join(dir, 'extensions')
  const filtersDir = path.join(dir, 'filters')
  mkdirSync(extensionsDir)
  mkdirSync(filtersDir)
  const write = (root: string) => (file: string, code: string) => {
    const p = path.join(root, file)
    mkdirSync(path.dirname(p), { recursive: true })
    writeFileSync(p, code)
    return p
  }
  const writeExtension = write(extensionsDir)
  const writeFilter = write(filtersDir)
  for (const [f, c] of Object.entries(o.extensions ?? {})) writeExtension(f, c)
  for (const [f, c] of Object.entries(o.filters ?? {})) writeFilter(f, c)
  const logs: LogLine[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as LogLine)
      done()
    },
  })
  const config = resolveConfig({ extensionsDir, filtersDir, logLevel: 'debug', ...o.config }, { cwd: dir })
  const server = await buildServer(config, { logger: pino({ level: config.logLevel }, sink), filterHooks: o.filterHooks, executors: o.executors })
  let closed = false
  return {
    server, dir, extensionsDir, filtersDir, logs, writeExtension, writeFilter,
    inject: server.app.inject.bind(server.app),
    async listen() {
      const address = await server.app.listen({ port: 0, host: '127.0.0.1' })
      return address
    },
    async close() {
      if (closed) return
      closed = true
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Forces a full GC (vitest runs with --expose-gc). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with --expose-gc')
  g()
}
