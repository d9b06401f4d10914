/** Polls `fn` until it returns a truthy value (returned), or throws after `timeout` ms with `what`. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeout = 15_000, every = 25): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const end = Date.now() + timeout
  let last: T | undefined
  for (;;) {
    last = await fn()
    if (last) return last as Exclude<T, false | null | undefined | 0 | ''>
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, every))
  }
}
