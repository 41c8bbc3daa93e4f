// The gate: every check a request meets before it may queue for the upstream, in the order it meets
// them, as one pure function of the configuration snapshot and the request's facts. The HTTP path
// (http/gate-hook.ts), the WebSocket upgrade (websocket.ts) and `explain` all call it, so none of them can
// disagree with another on any check. No fastify, undici or ws here; the caller turns the verdict
// into an answer, metrics and a log line. docs/ARCHITECTURE.md, "The request path".
import type { Snapshot } from '../config/load.ts'
import { decideActual, decidePreflight, isPreflight, type CorsDecision } from '../cors/decide.ts'
import type { ErrorCode } from '../errors.ts'
import { matchRoute } from '../routes.ts'

/** What the gate looks at: plain values, so that explain can make them up. */
export interface RequestFacts {
  method: string
  /** The request target as received: path and optional query (undefined: any path, for explain). */
  url: string | undefined
  /** '1.0' or '1.1' (HTTP/2 carries :authority instead of Host). */
  httpVersion: string
  host: string | undefined
  origin: string | undefined
  /** This server's own origin as the client addressed it, for same-origin requests. */
  selfOrigin: string | undefined
  requestMethod?: string | undefined
  requestHeaders?: string | undefined
  requestPrivateNetwork?: string | undefined
  /** Header lines received. */
  headerCount: number
  /** The Content-Length header, when there is one. */
  contentLength?: string | undefined
}

/** A refusal: the error code (and so the status), an optional message, and the headers to add. */
export interface Refusal {
  kind: 'refuse'
  code: ErrorCode
  message?: string | undefined
  /** CORS headers (so a page can read the refusal), Vary, Allow, Connection. */
  headers: Record<string, string>
  cors: CorsDecision | undefined
  shadow: CorsDecision | undefined
  route: string | undefined
}

export type Verdict =
  | { kind: 'preflight'; cors: CorsDecision; shadow: CorsDecision | undefined; route: undefined; headers: Record<string, string> }
  | Refusal
  | { kind: 'pass'; cors: CorsDecision; shadow: CorsDecision | undefined; route: string | undefined; headers: Record<string, string> }

/** CORS headers and Vary for a decision: what every answer to the request carries. */
function corsHeaders (d: CorsDecision): Record<string, string> {
  return d.vary === undefined ? { ...d.headers } : { ...d.headers, vary: d.vary }
}

const refuse = (code: ErrorCode, headers: Record<string, string>, cors?: CorsDecision, shadow?: CorsDecision, route?: string, message?: string): Refusal =>
  ({ kind: 'refuse', code, message, headers, cors, shadow, route })

/** The report-only policy's decision for the same facts (the caller compares the outcomes). */
function shadowOf (snap: Snapshot, decide: (policy: NonNullable<Snapshot['shadow']>) => CorsDecision): CorsDecision | undefined {
  return snap.shadow === undefined ? undefined : decide(snap.shadow)
}

/**
 * An HTTP request: Host (RFC 9112 §3.2) → preflight (answered here, never forwarded) → CORS →
 * header count → route allowlist → origin enforcement → declared body length.
 */
export function gate (snap: Snapshot, f: RequestFacts): Verdict {
  if (f.host === undefined && f.httpVersion === '1.1') return refuse('bad_request', {}, undefined, undefined, undefined, 'The Host header is required.')

  if (isPreflight(f.method, f.origin, f.requestMethod)) {
    const facts = { method: 'OPTIONS', origin: f.origin, requestMethod: f.requestMethod, requestHeaders: f.requestHeaders, requestPrivateNetwork: f.requestPrivateNetwork }
    const d = decidePreflight(snap.cors, facts)
    const shadow = shadowOf(snap, (p) => decidePreflight(p, facts))
    if (d.outcome === 'denied') {
      return refuse('cors_preflight_denied', { vary: d.vary as string }, d, shadow, undefined, `The CORS preflight was denied: ${(d.failures[0] as { detail: string }).detail}.`)
    }
    return { kind: 'preflight', cors: d, shadow, route: undefined, headers: corsHeaders(d) }
  }

  const facts = { method: f.method, origin: f.origin, selfOrigin: f.selfOrigin }
  const d = decideActual(snap.cors, facts)
  const shadow = f.origin === undefined ? undefined : shadowOf(snap, (p) => decideActual(p, facts))
  const headers = corsHeaders(d)
  // Every refusal below carries the CORS headers of an allowed request, so the page can read it.
  if (f.headerCount > snap.config.limits.maxHeaders) return refuse('headers_too_large', headers, d, shadow)

  let route: string | undefined
  if (f.url !== undefined) {
    const match = matchRoute(snap.routes, f.url, f.method)
    if (match.kind === 'bad_path' || match.kind === 'not_found') return refuse(match.kind, headers, d, shadow)
    if (match.kind === 'method_not_allowed') return refuse('method_not_allowed', { ...headers, allow: match.allow }, d, shadow, match.route)
    route = match.route
  }

  if (d.outcome === 'denied' && snap.cors.settings.enforce) {
    return refuse('cors_origin_denied', headers, d, shadow, route, `This origin is not allowed by the CORS policy of this API (${d.reason}).`)
  }
  // A body declared too large is refused before a byte of it is read (the connection then closes).
  if (f.contentLength !== undefined && Number(f.contentLength) > snap.config.limits.maxBodyBytes) {
    return refuse('payload_too_large', { ...headers, connection: 'close' }, d, shadow, route)
  }
  return { kind: 'pass', cors: d, shadow, route, headers }
}

/**
 * A WebSocket upgrade on websocket.path: Host → header count → CORS. Unlike HTTP, cors.enforce:
 * false does not let a denied origin through (no browser check protects what a WebSocket reads),
 * and an upgrade without Origin needs websocket.allowMissingOrigin (RFC 6455 §10.2).
 */
export function gateUpgrade (snap: Snapshot, f: RequestFacts): Verdict {
  if (f.host === undefined) return refuse('bad_request', {}, undefined, undefined, undefined, 'The Host header is required.')
  if (f.headerCount > snap.config.limits.maxHeaders) return refuse('headers_too_large', {})
  const facts = { method: 'GET', origin: f.origin, selfOrigin: f.selfOrigin }
  const d = decideActual(snap.cors, facts)
  const shadow = f.origin === undefined ? undefined : shadowOf(snap, (p) => decideActual(p, facts))
  const ws = snap.config.websocket
  if (d.outcome === 'denied') return refuse('cors_origin_denied', {}, d, shadow, ws.path, `This origin is not allowed by the CORS policy of this API (${d.reason}).`)
  if (d.outcome === 'none' && !ws.allowMissingOrigin) return refuse('origin_required', {}, d, shadow, ws.path)
  return { kind: 'pass', cors: d, shadow, route: ws.path, headers: {} }
}
