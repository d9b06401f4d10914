#!/usr/bin/env node
// The `resident` command. Runs the compiled host in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('resident: dist/ is missing; run "npm run build" (npm install does it)\n')
  process.exit(1)
}
// `resident cgi` runs once per request: it loads the bundled runner (one CommonJS file in the
// bundle cache, built on first use and whenever Resident changes) rather than the module graph
// under dist/, which costs every request about a quarter more CPU. Without a usable cache, the graph.
if (process.argv[2] === 'cgi') {
  let runner = null
  try {
    const { defaultCacheDir } = await import(new URL('../dist/loader/bundle-cache.js', import.meta.url).href)
    const cacheDir = defaultCacheDir()
    if (cacheDir !== null) runner = await (await import(new URL('../dist/modes/cgi/runner-bundle.js', import.meta.url).href)).ensureRunnerBundle(cacheDir)
  } catch { /* no bundle: the module graph serves */ }
  if (runner !== null) {
    // The runner reads its arguments from process.argv: `<node> <bin> <entry>`.
    process.argv.splice(2, 1)
    const { createRequire } = await import('node:module')
    try {
      createRequire(import.meta.url)(runner)
    } catch {
      // Replaced by a concurrent rebuild between the check and the load: the module graph serves.
      process.argv.splice(2, 0, 'cgi')
      runner = null
    }
  }
  if (runner === null) {
    const { main } = await import(new URL('../dist/cli/cgi.js', import.meta.url).href)
    await main(process.argv.slice(3))
  }
} else {
  const { main } = await import(entry.href)
  await main(process.argv.slice(2))
}
