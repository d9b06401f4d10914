import { lazyBuiltin } from './builtin.ts'

// Loaded when a stream's bad chunk is located, not with every process that may stream.
const inspector = lazyBuiltin<typeof import('node:inspector')>('node:inspector')
import { fileURLToPath } from 'node:url'
import { mapStack } from './stack.ts'

// Where an async generator is suspended: the `yield` that produced the value being handled. V8
// keeps that position on the generator object, and only the inspector protocol shows it (as
// [[GeneratorLocation]]). Used on the error path only, when a yielded chunk cannot be sent, so
// that the report names the author's line rather than the host's: an in-process session, no port.

type Post = <T>(method: string, params?: object) => Promise<T>

interface Location { scriptId: string; lineNumber: number; columnNumber: number }

/** "file:line:col" of the yield `generator` is suspended at, mapped to the author's source; null when unknown. */
export async function suspendedAt(generator: object): Promise<string | null> {
  const session = new (inspector().Session)()
  const urls = new Map<string, string>()
  session.on('Debugger.scriptParsed', (m) => { urls.set(m.params.scriptId, m.params.url) })
  const post: Post = (method, params) => new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => { if (err) reject(err); else resolve(result as never) })
  })
  const key = `__resident_locate_${process.hrtime.bigint()}`
  try {
    session.connect()
    ;(globalThis as Record<string, unknown>)[key] = generator
    const { result } = await post<{ result: { objectId?: string } }>('Runtime.evaluate', { expression: `globalThis[${JSON.stringify(key)}]` })
    if (!result.objectId) return null
    const props = await post<{ internalProperties?: Array<{ name: string; value?: { value?: Location } }> }>('Runtime.getProperties', { objectId: result.objectId, ownProperties: true })
    const at = props.internalProperties?.find((p) => p.name === '[[GeneratorLocation]]')?.value?.value
    if (!at) return null
    // Enabling the debugger reports every script parsed so far: how a script id becomes its name.
    await post('Debugger.enable')
    await post('Debugger.disable')
    let file = urls.get(at.scriptId)
    if (!file) return null
    if (file.startsWith('file:')) file = fileURLToPath(file)
    return mapStack(`${file}:${at.lineNumber + 1}:${at.columnNumber + 1}`)
  } catch {
    return null
  } finally {
    delete (globalThis as Record<string, unknown>)[key]
    session.disconnect()
  }
}
