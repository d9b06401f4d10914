import { Session } from 'node:inspector'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SourceMapPayload } from '../../loader/build.ts'
import { mapStack, registerSourceMap } from '../../loader/stack.ts'

// The slow log's "worker's stack at the threshold" (PHP-FPM's request_slowlog_timeout reads the
// child's stack with ptrace). A worker thread busy in a command cannot be asked anything by
// message, but V8's inspector interrupts it: the host attaches to the worker through the main
// thread's inspector session (NodeWorker domain), pauses it, reads the call frames, resumes and
// detaches. Nothing is attached while no request is slow, so this costs requests nothing.

/** What the generation's code was compiled as, so frames map back to the author's source. */
export interface StackSource { entry: string; generation: number; map: SourceMapPayload }

interface Frame { functionName: string; url: string; location: { scriptId: string; lineNumber: number; columnNumber: number } }
type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { message: string } }

/** How long a pause may take to land before the worker is taken to be waiting (no JavaScript on its stack). */
const PAUSE_WAIT_MS = 200
/** How long the whole capture may take. */
const CAPTURE_TIMEOUT_MS = 2_000

export const NOT_RUNNING = '(no JavaScript running in the worker for this command: it is waiting on a promise, a timer or I/O)'

/**
 * The stack of worker thread `threadId` now, in V8's `    at fn (file:line:col)` form with the
 * generation's frames mapped to its source; NOT_RUNNING when it runs no JavaScript; null when it
 * cannot be read (the thread is gone, or the capture timed out).
 */
export async function workerStack(threadId: number, source: StackSource): Promise<string | null> {
  const session = new Session()
  session.connect()
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => {
    session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r)))
  })
  let sessionId: string | null = null
  session.on('NodeWorker.attachedToWorker', (e: { params: { sessionId: string; workerInfo: { title: string } } }) => {
    // The inspector numbers workers its own way; their title starts with the thread id.
    if (e.params.workerInfo.title.startsWith(`[worker ${threadId}]`)) sessionId = e.params.sessionId
  })
  let nextId = 0
  const replies = new Map<number, (m: Message) => void>()
  const urls = new Map<string, string>()
  let paused: ((frames: Frame[]) => void) | null = null
  session.on('NodeWorker.receivedMessageFromWorker', (e: { params: { sessionId: string; message: string } }) => {
    if (e.params.sessionId !== sessionId) return
    const m = JSON.parse(e.params.message) as Message
    if (m.id !== undefined) { replies.get(m.id)?.(m); replies.delete(m.id); return }
    if (m.method === 'Debugger.scriptParsed') urls.set(m.params!.scriptId as string, m.params!.url as string)
    else if (m.method === 'Debugger.paused') paused?.(m.params!.callFrames as Frame[])
  })
  const send = (method: string, params: object = {}) => new Promise<Message>((resolve) => {
    const id = ++nextId
    replies.set(id, resolve)
    session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) }, (e) => {
      if (e) { replies.delete(id); resolve({ id, error: { message: e.message } }) }
    })
  })
  const capture = async (): Promise<string | null> => {
    // Attaching reports the workers already running before enable's own answer.
    await post('NodeWorker.enable', { waitForDebuggerOnStart: false })
    if (sessionId === null) return null
    await send('Debugger.enable')
    const frames = await new Promise<Frame[] | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), PAUSE_WAIT_MS)
      paused = (f) => { clearTimeout(timer); resolve(f) }
      void send('Debugger.pause')
    })
    paused = null
    if (frames !== null) await send('Debugger.resume')
    // Disabling also cancels a pause that has not landed (a worker waiting, not running).
    await send('Debugger.disable')
    // A pause that lands in the worker's own machinery (its heap-figures timer) is not the command.
    if (frames === null || !frames.some((f) => pathOf(f, urls) === `${source.entry}?gen=${source.generation}`)) return NOT_RUNNING
    return format(frames, urls, source)
  }
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([capture(), new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), CAPTURE_TIMEOUT_MS) })])
  } catch {
    return null
  } finally {
    clearTimeout(timer)
    await post('NodeWorker.disable').catch(() => undefined)
    session.disconnect()
  }
}

/** A frame's file as errors name it: the inspector names vm-compiled code by file URL (`…/hello.ts%3Fgen=2`). */
function pathOf(f: Frame, urls: Map<string, string>): string {
  const raw = f.url || urls.get(f.location.scriptId) || '<anonymous>'
  return raw.startsWith('file:') ? fileURLToPath(raw) : raw
}

/** Frames as V8 prints them, the generation's mapped back to the author's files through its source map. */
function format(frames: Frame[], urls: Map<string, string>, source: StackSource): string {
  const text = frames.map((f) => {
    const url = pathOf(f, urls)
    return `    at ${f.functionName || '<anonymous>'} (${url}:${f.location.lineNumber + 1}:${f.location.columnNumber + 1})`
  }).join('\n')
  // The worker compiled the bundle under this name (see src/loader/instantiate.ts); the host holds the same map.
  const forget = registerSourceMap(`${source.entry}?gen=${source.generation}`, source.map, path.dirname(source.entry))
  try {
    return mapStack(text)
  } finally {
    forget()
  }
}
