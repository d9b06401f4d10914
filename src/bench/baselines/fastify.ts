// Baseline: bare fastify, one route doing hello.greet's work. Started by `resident bench`.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/hello/greet', async (request) => ({ hello: (request.query as { name?: string }).name ?? 'world' }))
const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`listening on ${url}\n`)
process.on('SIGTERM', () => process.exit(0))
