/**
 * What the dashboard shows of the processes or threads a mode runs extensions in (worker threads,
 * a FastCGI pool, CGI children). The in-process mode has none. A mode fills this in by giving its
 * executor (for what it shares between generations) or its loaded generations (for their own pool)
 * a `processes()` method; nothing else is needed for them to appear on /_resident/ and in the
 * status JSON.
 */
export interface ModeProcess {
  /** OS process id, or null for a thread (then `id` names it). */
  pid: number | null
  /** A stable name for the row: a thread id, a pool slot, an address. */
  id: string
  /** What it is: "worker thread", "fastcgi", "cgi"… */
  kind: string
  /** The extension it serves, when it serves one. */
  extension: string | null
  /** "idle", "busy", "starting", "stopping"… as the mode names them. */
  state: string
  /** Requests it has handled, when the mode counts them. */
  requests?: number
  /** ISO date it started. */
  startedAt?: string
  /** The generation it runs, for those that belong to one. */
  generation?: number
}

/** An executor that can list its processes. */
export interface ListsProcesses {
  processes(): ModeProcess[]
}

/** The processes of any executor or loaded generation: [] for one without the method (or one that throws). */
export function listProcesses(owner: unknown): ModeProcess[] {
  const fn = (owner as Partial<ListsProcesses> | null)?.processes
  if (typeof fn !== 'function') return []
  try { return fn.call(owner) } catch { return [] }
}
