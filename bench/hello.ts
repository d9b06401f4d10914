// Smoke bench for the launcher itself: prints the Node version and that GC is exposed.
console.log(`node ${process.version}, gc exposed: ${typeof (globalThis as { gc?: unknown }).gc === 'function'}`)
