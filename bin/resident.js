#!/usr/bin/env node
// The `resident` command. Runs the compiled host in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('resident: dist/ is missing; run "npm run build" (npm install does it)\n')
  process.exit(1)
}
// `resident cgi` runs once per request: it loads only its own module, not the server's.
if (process.argv[2] === 'cgi') {
  const { main } = await import(new URL('../dist/cli/cgi.js', import.meta.url).href)
  await main(process.argv.slice(3))
} else {
  const { main } = await import(entry.href)
  await main(process.argv.slice(2))
}
