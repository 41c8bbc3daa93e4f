// The floor: the least a Node.js CORS proxy can do on the benchmark's paths, to tell what Node
// itself costs from what the sidecar adds (docs/BENCHMARKS.md: where a target is beyond Node, the
// floor misses it too).
// node:http server, undici Pool (the client @fastify/reply-from uses), no framework, no validation,
// no logging, no metrics, no admission: preflights from the allowed origin get a fixed 204, anything
// else is streamed to the upstream and its answer streamed back with Access-Control-Allow-Origin.
// Not a product: it skips every check the sidecar makes. `node bench/floor.ts <upstream-url>`
// prints its URL on stdout, then serves until killed.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const upstream = process.argv[2] as string
const pool = new Pool(upstream, { connections: 64, pipelining: 1 })
const allowed = new Set(['https://app.example.com'])
const PREFLIGHT = { 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'content-type, x-request-id', 'access-control-max-age': '600' }
const EXPOSE = { 'access-control-expose-headers': 'x-request-id', vary: 'Origin' }
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'host'])

const server = createServer((req, res) => {
  const origin = req.headers.origin
  const ok = origin !== undefined && allowed.has(origin)
  // Like the nginx configuration: 204 to every preflight, the allow headers only for an allowed origin.
  if (req.method === 'OPTIONS') {
    const headers: Record<string, string> = { vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers', 'content-length': '0' }
    if (ok) Object.assign(headers, PREFLIGHT, { 'access-control-allow-origin': origin })
    res.writeHead(204, headers).end()
    return
  }
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v
  pool.stream({
    path: req.url as string,
    // The benchmark sends POSTs only: every request has a body to stream.
    method: 'POST',
    headers,
    body: req
  }, ({ statusCode, headers: h }) => {
    const out: Record<string, string | string[]> = {}
    for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v
    if (ok) Object.assign(out, EXPOSE, { 'access-control-allow-origin': origin })
    res.writeHead(statusCode, out)
    return res
  }, (err) => {
    // A failed exchange resets the client connection: the harness counts it as an error and
    // refuses the measurement, so a floor that failed is never reported.
    if (err !== null) res.destroy()
  })
})
server.keepAliveTimeout = 60_000
// Exit normally on the harness's SIGTERM, so that --cpu-prof writes the profile (a signal's default
// action would end the process before it could).
process.once('SIGTERM', () => process.exit(0))
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
