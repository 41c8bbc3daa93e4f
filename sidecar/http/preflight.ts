// Allowed CORS preflights, answered from precomputed responses before fastify sees the request.
// Preflights are the bulk of CORS traffic and their answer depends only on the policy and four
// request headers, so the gate's verdict (http/gate.ts) is computed once per distinct (Origin,
// method, headers, private network) and kept, as a flat header list, in a bounded cache that
// belongs to the configuration snapshot: a reload brings a new snapshot and so a new, empty cache.
// A denied preflight, or anything unusual, takes the ordinary path (its JSON error, its log line).
// docs/ARCHITECTURE.md, "The request path"; Fetch, "CORS-preflight fetch".
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { Snapshot } from '../config/load.ts'
import type { CorsDecision } from '../cors/decide.ts'
import type { Metrics } from '../metrics.ts'
import { requestId } from '../forwarding.ts'
import { gate } from './gate.ts'

/** Distinct preflights kept per snapshot; past it, more are answered without being kept. */
export const PREFLIGHT_CACHE_SIZE = 512

interface Answer {
  /** The response headers, flat (name, value, …), without x-request-id. */
  headers: string[]
  cors: CorsDecision
  shadow: CorsDecision | undefined
}

/** undefined: not looked at yet; null: not answered here (denied). */
const caches = new WeakMap<Snapshot, Map<string, Answer | null>>()

function verdictFor (snap: Snapshot, origin: string, method: string, headers: string | undefined, privateNetwork: string | undefined): Answer | null {
  // The gate's preflight branch reads only these four headers; Host was checked by the caller, and
  // the target, the version and the header count play no part in a preflight's answer.
  const v = gate(snap, {
    method: 'OPTIONS',
    url: undefined,
    httpVersion: '1.1',
    host: 'preflight',
    origin,
    selfOrigin: undefined,
    requestMethod: method,
    requestHeaders: headers,
    requestPrivateNetwork: privateNetwork,
    headerCount: 0
  })
  if (v.kind !== 'preflight') return null
  // Content-Length: 0 for older Safari; any 2xx is a success per Fetch.
  const flat = Object.entries(v.headers).flat()
  flat.push('content-length', '0')
  return { headers: flat, cors: v.cors, shadow: v.shadow }
}

/** The cached answer for these preflight headers, computing (and keeping, while there is room) a new one. */
export function preflightAnswer (snap: Snapshot, origin: string, method: string, headers: string | undefined, privateNetwork: string | undefined): Answer | null {
  let cache = caches.get(snap)
  if (cache === undefined) {
    cache = new Map()
    caches.set(snap, cache)
  }
  const key = `${origin}\n${method}\n${headers ?? ''}\n${privateNetwork ?? ''}`
  let answer = cache.get(key)
  if (answer === undefined) {
    answer = verdictFor(snap, origin, method, headers, privateNetwork)
    // A client that varies its requested headers cannot grow the cache past its size.
    if (cache.size < PREFLIGHT_CACHE_SIZE) cache.set(key, answer)
  }
  return answer
}

export interface EarlyPreflightDeps {
  current: () => Snapshot
  metrics: Metrics
  logger: FastifyBaseLogger
  draining: () => boolean
}

/**
 * Answers an allowed preflight straight from the cache; returns false to leave the request to
 * fastify. Only a well-formed preflight qualifies: OPTIONS with Origin and
 * Access-Control-Request-Method, a Host on HTTP/1.1 (RFC 9112 §3.2), and a target without
 * percent-escapes (which fastify's router checks and refuses with our 400).
 */
export function earlyPreflight (deps: EarlyPreflightDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const m = deps.metrics
  return (req, res) => {
    if (req.method !== 'OPTIONS') return false
    const h = req.headers
    const origin = h.origin
    const method = h['access-control-request-method']
    if (origin === undefined || method === undefined || (h.host === undefined && req.httpVersion === '1.1') || (req.url as string).includes('%')) return false
    const started = performance.now()
    const answer = preflightAnswer(deps.current(), origin, method, h['access-control-request-headers'], h['access-control-request-private-network'] as string | undefined)
    if (answer === null) return false
    const id = requestId(req)
    const headers = answer.headers.concat('x-request-id', id)
    // Draining: this answer ends its connection, so the client opens its next one elsewhere.
    if (deps.draining()) headers.push('connection', 'close')
    res.writeHead(204, headers).end()
    const d = answer.cors
    m.preflights.inc({ result: 'allowed', cors_entry: d.matched as string })
    const shadow = answer.shadow
    if (shadow !== undefined) m.shadowDecisions.inc({ active: d.outcome, shadow: shadow.outcome })
    // Allowed preflights are logged at debug, as on the ordinary path: they are the bulk of CORS
    // traffic and say little.
    if (deps.logger.level === 'debug' || deps.logger.level === 'trace') {
      const differs = shadow !== undefined && shadow.outcome !== d.outcome
      deps.logger.debug({
        requestId: id,
        method: 'OPTIONS',
        status: 204,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        cors: d.outcome,
        corsReason: d.reason,
        corsMatched: d.matched,
        shadow: differs ? shadow.outcome : undefined,
        shadowReason: differs ? shadow.reason : undefined,
        preflight: true
      }, 'request')
    }
    return true
  }
}
