import { ownerOf } from '../loader/owner.ts'
import { sealSharedPrototypes } from '../loader/pollution.ts'
import { mapErrorStack } from '../loader/stack.ts'
import type { ResidentServer } from './app.ts'

/**
 * The process-wide policy for exceptions and rejections nobody caught (installed by the CLI; a
 * library user who embeds the server decides their own):
 * - traced to an extension's generation (loader/owner.ts): logged with the source-mapped stack,
 *   counted in the status page, and that generation retired — the next request loads a fresh one;
 * - traced to a filter: logged, counted, and the filter rebuilt in place;
 * - traced to nobody: nobody can say what state the process is in, so it is logged, the server
 *   drains (requests in flight finish, up to drainTimeout) and the process exits with code 1 for
 *   a supervisor to restart.
 * Unless `sealPrototypes` is false it also seals the shared prototypes (loader/pollution.ts), so a
 * key an extension adds to them later, from a timer, is a fault traced to it instead of one
 * nobody can be blamed for. Returns a function that removes the handlers (a seal cannot be undone).
 */
export function handleFaults(server: ResidentServer, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const log = server.log
  if (server.config.sealPrototypes) sealSharedPrototypes()
  let exiting = false

  const onFault = (fault: unknown, origin: string): void => {
    // Read the owner first, synchronously: the async context is the faulting code's only now.
    const owner = ownerOf(fault)
    const err = mapErrorStack(fault)
    if (owner?.kind === 'extension') {
      const retired = server.registry.fault(owner.name, owner.generation, fault)
      log.error({ err, extension: owner.name, generation: owner.generation, origin },
        `${owner.name} (generation ${owner.generation}) raised an ${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'} outside any request` +
        (retired ? '; that generation is retired and the next request loads a fresh one' : ' (that generation is already retired)'))
      return
    }
    if (owner?.kind === 'filter') {
      log.error({ err, filter: owner.name, generation: owner.generation, origin },
        `filter "${owner.name}" (generation ${owner.generation}) raised an ${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'} outside any request; rebuilding it`)
      server.filters.fault(owner.name, owner.generation).catch((e: unknown) => log.error({ err: mapErrorStack(e) }, `filter "${owner.name}" could not be rebuilt; the old one stays in the chain`))
      return
    }
    log.fatal({ err, origin }, exiting
      ? 'another fault no extension or filter can be blamed for, while draining'
      : 'a fault no extension or filter can be blamed for: the process state is unknown, so the server drains and exits with code 1 (run it under a supervisor that restarts it)')
    if (exiting) return
    exiting = true
    const force = setTimeout(() => exit(1), server.config.drainTimeout + 5_000)
    force.unref()
    server.close().then(() => exit(1), () => exit(1))
  }
  const onException = (e: unknown, origin: string) => onFault(e, origin)
  const onRejection = (reason: unknown) => onFault(reason, 'unhandledRejection')
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.off('uncaughtException', onException)
    process.off('unhandledRejection', onRejection)
  }
}
