// "512MB", "1MiB", "30s", "10m": human units in config files and flags.

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i
const SIZE_FACTOR: Record<string, number> = {
  b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3,
}

/** Bytes from a number or a string such as "512MB" (binary units: 1MB = 1024 KiB). */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined
  if (typeof value !== 'string') return undefined
  const m = SIZE.exec(value.trim())
  if (!m) return undefined
  return Math.floor(Number(m[1]) * SIZE_FACTOR[(m[2] ?? 'b').toLowerCase()]!)
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i
const DURATION_FACTOR: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Milliseconds from a number or a string such as "30s", "10m", "250ms". */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined
  if (typeof value !== 'string') return undefined
  const m = DURATION.exec(value.trim())
  if (!m) return undefined
  return Math.floor(Number(m[1]) * DURATION_FACTOR[(m[2] ?? 'ms').toLowerCase()]!)
}
