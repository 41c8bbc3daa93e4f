// The floor: the least a Node.js CORS proxy can do on the benchmark's paths, to tell what Node
// itself costs from what the sidecar adds (docs/BENCHMARKS.md), with the tricks a fast sidecar would use,
// so that it stays the least a Node proxy can do:
// - a node:http server (`optimizeEmptyRequests`: a request without a body gets no body stream work);
// - headers read once from `rawHeaders` and written as flat arrays, both ways: no header objects;
// - preflight answers computed once per (origin, requested method, requested headers) and cached
//   (a bounded cache), like the allowlist verdict per origin;
// - undici `Pool.dispatch()` with a handler that writes the upstream's status, headers and chunks
//   straight to the response (no BodyReadable, no stream pipeline), pausing undici when the client
//   is slow and resuming it on `drain`;
// - a small body (declared length ≤ 64 KiB) collected into one Buffer before dispatch, so undici
//   writes head and body together; larger and chunked bodies are streamed, with backpressure.
// No framework, validation, routes, admission, logging or metrics: not a product, it skips every
// check the sidecar makes. `node bench/floor.ts <upstream-url>` prints its URL on stdout, then serves
// until killed.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import { EXPOSED, HEADERS, MAX_AGE, METHODS, ORIGINS, originList } from './policy.ts'

const upstream = process.argv[2] as string
const pool = new Pool(upstream, { connections: 64, pipelining: 1 })
const SMALL = 64 * 1024
const CACHE = 1000
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'host', 'expect'])
const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'

const patterns = originList(ORIGINS)
const verdicts = new Map<string, boolean>()
function allowed (origin: string): boolean {
  let ok = verdicts.get(origin)
  if (ok === undefined) {
    ok = patterns.some((p) => typeof p === 'string' ? p === origin : p.test(origin))
    if (verdicts.size >= CACHE) verdicts.clear()
    verdicts.set(origin, ok)
  }
  return ok
}

const ALLOWED_HEADERS = new Set(HEADERS)
const preflights = new Map<string, string[]>()
/** The preflight's answer headers as a flat array, computed once per distinct request. */
function preflight (origin: string, method: string, requested: string): string[] {
  const key = `${origin}\n${method}\n${requested}`
  let headers = preflights.get(key)
  if (headers === undefined) {
    const names = requested === '' ? [] : requested.split(',').map((h) => h.trim().toLowerCase())
    // Like the nginx configuration: 204 to every preflight, the allow headers only when allowed.
    // `content-length: 0` although a 204 has no body: without it, preflights measured ~0.6 × the
    // requests/s here (one short interleaved run), with the same CPU per preflight.
    headers = allowed(origin) && METHODS.includes(method) && names.every((h) => ALLOWED_HEADERS.has(h))
      ? ['access-control-allow-origin', origin, 'access-control-allow-methods', METHODS.join(', '), 'access-control-allow-headers', HEADERS.join(', '),
          'access-control-max-age', String(MAX_AGE), 'vary', PREFLIGHT_VARY, 'content-length', '0']
      : ['vary', PREFLIGHT_VARY, 'content-length', '0']
    if (preflights.size >= CACHE) preflights.clear()
    preflights.set(key, headers)
  }
  return headers
}

const CORS_TAIL = ['access-control-expose-headers', EXPOSED.join(', '), 'vary', 'Origin']

/** Writes undici's answer to the client's response as it comes (the legacy handler API: raw headers, no objects). */
class Relay implements Dispatcher.DispatchHandler {
  abort: ((err?: Error) => void) | undefined
  resume: (() => void) | undefined
  watching = false
  readonly res: ServerResponse
  readonly origin: string | undefined
  constructor (res: ServerResponse, origin: string | undefined) {
    this.res = res
    this.origin = origin
  }

  onConnect (abort: (err?: Error) => void): void { this.abort = abort }

  onHeaders (statusCode: number, raw: Buffer[], resume: () => void): boolean {
    this.resume = resume
    const out: string[] = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString('latin1')
      if (!HOP.has(name.toLowerCase())) out.push(name, (raw[i + 1] as Buffer).toString('latin1'))
    }
    if (this.origin !== undefined) out.push('access-control-allow-origin', this.origin, ...CORS_TAIL)
    this.res.writeHead(statusCode, out)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true
    // The client is slow: undici pauses until `drain`; a client that is gone ends the exchange.
    const socket = this.res.socket
    if (socket === null || socket.destroyed) {
      (this.abort as (err?: Error) => void)(new Error('client gone'))
      return false
    }
    this.res.once('drain', this.resume as () => void)
    if (!this.watching) {
      this.watching = true
      this.res.once('close', () => { if (!this.res.writableFinished) (this.abort as (err?: Error) => void)(new Error('client gone')) })
    }
    return false
  }

  onComplete (): void { this.res.end() }

  // A failed exchange resets the client connection: the harness counts it as an error and refuses
  // the measurement, so a floor that failed is never reported.
  onError (): void { this.res.destroy() }
}

function forward (req: IncomingMessage, res: ServerResponse, headers: string[], origin: string | undefined, body: Buffer | IncomingMessage | null): void {
  pool.dispatch({ path: req.url as string, method: req.method as Dispatcher.HttpMethod, headers, body }, new Relay(res, origin))
}

const server = createServer({ optimizeEmptyRequests: true, keepAliveTimeout: 60_000 }, (req, res) => {
  // One pass over the raw headers: what the proxy needs, and the forwarded headers as a flat array.
  const raw = req.rawHeaders
  const headers: string[] = []
  let origin: string | undefined
  let length = -1
  let method = ''
  let requested = ''
  let chunked = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    const lower = name.toLowerCase()
    if (lower === 'origin') origin = value
    else if (lower === 'content-length') length = Number(value)
    else if (lower === 'access-control-request-method') method = value
    else if (lower === 'access-control-request-headers') requested = value
    else if (lower === 'transfer-encoding') chunked = true
    if (!HOP.has(lower)) headers.push(name, value)
  }
  if (req.method === 'OPTIONS' && origin !== undefined && method !== '') {
    res.writeHead(204, preflight(origin, method, requested)).end()
    return
  }
  const cors = origin !== undefined && allowed(origin) ? origin : undefined
  if (length === 0 || (length === -1 && !chunked)) {
    forward(req, res, headers, cors, null)
  } else if (length > 0 && length <= SMALL) {
    // Small and declared: one Buffer, so that undici writes head and body in one go.
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => { forward(req, res, headers, cors, chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks)) })
  } else {
    // Large or chunked: streamed; undici reads the request as fast as the upstream takes it.
    forward(req, res, headers, cors, req)
  }
})
// Exit normally on the harness's SIGTERM, so that --cpu-prof writes the profile (a signal's default
// action would end the process before it could).
process.once('SIGTERM', () => process.exit(0))
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
