// The calls of one loaded module still running, by invocation id, so cancel(id) can abort them.
// Ids may repeat (a client may send its own), hence a set per id.

export class LiveCalls {
  readonly #byId = new Map<string, Set<AbortController>>()

  /** A controller for a call of `id`, live until `forget()`. */
  start(id: string): { controller: AbortController; forget: () => void } {
    const controller = new AbortController()
    let set = this.#byId.get(id)
    if (set === undefined) this.#byId.set(id, set = new Set())
    set.add(controller)
    const calls = set
    const forget = () => {
      calls.delete(controller)
      if (calls.size === 0 && this.#byId.get(id) === calls) this.#byId.delete(id)
    }
    return { controller, forget }
  }

  /** The controllers of `id`'s calls still running (a copy: aborting may end them). */
  of(id: string): AbortController[] {
    return [...(this.#byId.get(id) ?? [])]
  }
}
