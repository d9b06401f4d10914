// Baseline: bare node:http doing hello.greet's work (read `name` from the query, answer JSON).
// Started by `resident bench` as a child process; prints its URL on stdout.
import http from 'node:http'

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const body = JSON.stringify({ hello: url.searchParams.get('name') ?? 'world' })
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
