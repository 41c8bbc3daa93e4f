// Peer: express + cors + http-proxy-middleware, the Express way to put CORS in front of an API
// . http-proxy-middleware opens a connection per request unless given an agent: a
// keep-alive one here, as a user who measured would configure it.
// `node bench/peers/express.ts <upstream-url>` prints its URL, then serves until killed.
import cors from 'cors'
import express from 'express'
import { createProxyMiddleware } from 'http-proxy-middleware'
import { Agent } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EXPOSED, HEADERS, MAX_AGE, METHODS, CREDENTIALS, originList } from '../policy.ts'

const app = express()
app.use(cors({ origin: originList(), methods: METHODS, allowedHeaders: HEADERS, exposedHeaders: EXPOSED, maxAge: MAX_AGE, credentials: CREDENTIALS }))
app.use(createProxyMiddleware({ target: process.argv[2] as string, agent: new Agent({ keepAlive: true }) }))
// For the harness, not the recipe: exit normally on SIGTERM (coverage and profiles are written at exit).
process.once('SIGTERM', () => process.exit(0))
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
