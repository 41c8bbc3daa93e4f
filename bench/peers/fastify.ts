// Peer: the fastify recipe a user would write for a CORS proxy: fastify,
// @fastify/cors for the policy and its preflights, @fastify/reply-from to forward. Bodies are not
// parsed: one catch-all content-type parser hands the request stream itself to reply-from (its
// README's way), so they stream.
// `node bench/peers/fastify.ts <upstream-url>` prints its URL, then serves until killed.
import cors from '@fastify/cors'
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import { EXPOSED, HEADERS, MAX_AGE, METHODS, CREDENTIALS, originList } from '../policy.ts'

const app = Fastify()
await app.register(cors, { origin: originList(), methods: METHODS, allowedHeaders: HEADERS, exposedHeaders: EXPOSED, maxAge: MAX_AGE, credentials: CREDENTIALS })
await app.register(replyFrom, { base: process.argv[2] as string })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })
app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/*', handler: (req, reply) => reply.from(req.url) })
// For the harness, not the recipe: exit normally on SIGTERM (coverage and profiles are written at exit).
process.once('SIGTERM', () => process.exit(0))
process.stdout.write(`${await app.listen({ host: '127.0.0.1', port: 0 })}\n`)
