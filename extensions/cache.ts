import { Extension, param, type UnloadReason } from 'resident-host'

/**
 * Holds a sizeable in-memory cache, to watch residency on /_resident/status: set its size with
 * `extensions.cache.config.sizeMB` (default 32), then lower `memory.budget` or `idleTimeout` and see
 * it evicted (its `unloads`, `retired[]` and `collected: true`) and rebuilt on the next request.
 */
export default class Cache extends Extension {
  static override commands = {
    get: { params: { key: param.integer({ min: 0 }) } },
  }

  #chunks: Buffer[] = []
  #hits = 0
  #misses = 0
  #builtAt = new Date()

  override init() {
    const sizeMB = Number(this.host.config.sizeMB ?? 32)
    // Filled, not just allocated: untouched pages would not count in RSS.
    for (let i = 0; i < sizeMB; i++) this.#chunks.push(Buffer.alloc(1024 * 1024, i % 251))
    // Made through the host handle, so unloading clears it and the code can be collected.
    this.host.setInterval(() => { this.#hits = Math.floor(this.#hits / 2) }, 60_000)
    this.host.log.info({ sizeMB }, `cache filled with ${sizeMB} MB`)
  }

  /** A value from the cache; `key` picks a 1 MB chunk. */
  get({ key }: { key: number }) {
    const chunk = this.#chunks[key % Math.max(1, this.#chunks.length)]
    if (chunk) this.#hits++
    else this.#misses++
    return { key, byte: chunk?.[key % 1024] ?? null, generation: this.host.generation }
  }

  stats() {
    return {
      generation: this.host.generation,
      builtAt: this.#builtAt.toISOString(),
      sizeMB: this.#chunks.length,
      hits: this.#hits,
      misses: this.#misses,
    }
  }

  override dispose(reason: UnloadReason) {
    this.host.log.info({ reason }, `cache dropped (${reason})`)
    this.#chunks = []
  }
}
