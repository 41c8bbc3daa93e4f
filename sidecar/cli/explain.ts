// `explain`: what the sidecar decides for one browser request, why, and the exact response headers.
// It runs the gate that answers live requests (http/gate.ts): every check, and every status, is the
// one live traffic gets, so explain cannot disagree with it.
import type { Snapshot } from '../config/load.ts'
import { parseRequestHeaders, SAFELISTED_METHODS, type CorsDecision } from '../cors/decide.ts'
import { parseRequestOrigin } from '../cors/origin.ts'
import type { CorsPolicy } from '../cors/policy.ts'
import { ERRORS, type ErrorCode } from '../errors.ts'
import { gate, type RequestFacts, type Verdict } from '../http/gate.ts'

export interface ExplainRequest {
  origin: string | undefined
  method: string
  /** Request headers the page sets itself (beyond the CORS-safelisted ones). */
  headers: string[]
  privateNetwork: boolean
  path: string | undefined
  /** The sidecar's own origin as the page addresses it: a page there makes same-origin requests. */
  selfOrigin?: string | undefined
}

export interface Explanation {
  request: ExplainRequest
  preflightNeeded: boolean
  preflight: { decision: CorsDecision; status: number; code: ErrorCode | undefined } | undefined
  /** status and code undefined: forwarded to the upstream. */
  actual: { decision: CorsDecision; status: number | undefined; code: ErrorCode | undefined } | undefined
  route: string | undefined
  verdict: 'allowed' | 'denied' | 'not_cors'
  /** What a request that passes the gate must still present (absent: authentication is off). */
  auth: AuthExplanation | undefined
  hints: string[]
}

export interface AuthExplanation {
  methods: ('jwt' | 'api_key')[]
  /** The answer without valid credentials, with the CORS headers of the actual request. */
  denied: { status: number; code: ErrorCode; wwwAuthenticate: string }
  requiredClaims: Record<string, string>
}

/** Authentication runs after the gate passes (docs/ARCHITECTURE.md, "The request path"). */
function authOf (snap: Snapshot): AuthExplanation | undefined {
  const auth = snap.config.auth
  if (auth === undefined) return undefined
  const methods: AuthExplanation['methods'] = []
  if (auth.jwt !== undefined) methods.push('jwt')
  if (auth.apiKeys !== undefined) methods.push('api_key')
  return {
    methods,
    denied: { status: ERRORS.unauthorized.status, code: 'unauthorized', wwwAuthenticate: `Bearer realm="${auth.realm}", error="invalid_token"` },
    requiredClaims: { ...auth.jwt?.requiredClaims }
  }
}

/** A page can only send a token if the preflight lets Authorization through. */
function authHints (snap: Snapshot, req: ExplainRequest, auth: AuthExplanation | undefined): string[] {
  if (auth === undefined || req.origin === undefined || !auth.methods.includes('jwt')) return []
  const sends = req.headers.some((h) => h.toLowerCase() === 'authorization')
  if (!sends) return ['this API needs credentials: a page sends its token as Authorization: Bearer …; add --header authorization to check that preflight']
  const listed = snap.cors.settings.allowedHeaders.some((h) => h.toLowerCase() === 'authorization')
  return listed ? [] : ['add "authorization" to cors.allowedHeaders ("*" never covers it), or the preflight fails before the token is sent']
}

function hintsFor (policy: CorsPolicy, req: ExplainRequest, decision: CorsDecision): string[] {
  const hints: string[] = []
  // Only called for a failed CORS request, which always has an Origin.
  const origin = req.origin as string
  for (const f of decision.failures) {
    if (f.reason === 'origin_not_allowed') {
      const o = parseRequestOrigin(origin)
      const similar = policy.settings.allowedOrigins.filter((e) => o !== undefined && e.includes(`//${o.host}`))
      if (similar.length > 0) hints.push(`allowedOrigins has ${similar.map((s) => `"${s}"`).join(', ')}: the scheme and port must match exactly too`)
      hints.push(`to allow it, add "${origin}" to cors.allowedOrigins`)
    } else if (f.reason === 'invalid_origin') {
      hints.push('browsers send the origin as scheme://host[:port] in lower case, without a path, trailing slash or default port')
    } else if (f.reason === 'method_not_allowed') {
      hints.push(`to allow it, add "${req.method}" to cors.allowedMethods`)
    } else if (f.reason === 'header_not_allowed') {
      hints.push(`to allow it, add "${f.detail.split(' ')[0] as string}" to cors.allowedHeaders`)
    } else if (f.reason === 'private_network_not_allowed') {
      hints.push('set cors.allowPrivateNetwork: true if public pages must reach this private address')
    }
  }
  return hints
}

/** A request as the gate sees it, from what explain was told; Host is always present. */
function facts (req: ExplainRequest, extra: Partial<RequestFacts>): RequestFacts {
  return { method: req.method, url: req.path, httpVersion: '1.1', host: 'explain', origin: req.origin, selfOrigin: req.selfOrigin, headerCount: 0, ...extra }
}

/** What the sidecar answers itself, if anything: the status and error code of a refusal. */
function answered (v: Verdict): { status: number | undefined; code: ErrorCode | undefined } {
  if (v.kind === 'refuse') return { status: ERRORS[v.code].status, code: v.code }
  return { status: v.kind === 'preflight' ? 204 : undefined, code: undefined }
}

export function explain (snap: Snapshot, req: ExplainRequest): Explanation {
  const policy = snap.cors
  const requested = parseRequestHeaders(req.headers.join(','))
  // Fetch sends a preflight for a non-safelisted method, any non-safelisted header, or a private-network request.
  const preflightNeeded = req.origin !== undefined &&
    (!SAFELISTED_METHODS.has(req.method) || !requested.ok || requested.names.length > 0 || req.privateNetwork)
  let preflight: Explanation['preflight']
  if (preflightNeeded) {
    const v = gate(snap, facts(req, {
      method: 'OPTIONS',
      requestMethod: req.method,
      requestHeaders: req.headers.join(','),
      requestPrivateNetwork: req.privateNetwork ? 'true' : undefined
    }))
    preflight = { decision: v.cors as CorsDecision, ...answered(v) as { status: number; code: ErrorCode | undefined } }
  }
  let actual: Explanation['actual']
  let route: string | undefined
  if (preflight === undefined || preflight.decision.outcome === 'allowed') {
    const v = gate(snap, facts(req, {}))
    route = v.route
    actual = { decision: v.cors as CorsDecision, ...answered(v) }
  }
  const failed = preflight?.decision.outcome === 'denied' ? preflight.decision : actual?.decision.outcome === 'denied' ? actual.decision : undefined
  const verdict = req.origin === undefined ? 'not_cors' : failed === undefined ? 'allowed' : 'denied'
  const auth = actual?.status === undefined ? authOf(snap) : undefined
  const hints = [...(failed === undefined ? [] : hintsFor(policy, req, failed)), ...authHints(snap, req, auth)]
  return { request: req, preflightNeeded, preflight, actual, route, verdict, auth, hints }
}

function headerLines (status: number | string, d: CorsDecision, extra: Record<string, string> = {}): string[] {
  const all: Record<string, string> = { ...d.headers, ...extra }
  if (d.vary !== undefined) all.vary = d.vary
  return [`    HTTP/1.1 ${status}`, ...Object.keys(all).sort().map((k) => `    ${k}: ${all[k] as string}`)]
}

function decisionLines (d: CorsDecision): string[] {
  const lines: string[] = []
  if (d.matched !== undefined) lines.push(`  origin: allowed by allowedOrigins entry "${d.matched}"`)
  for (const f of d.failures) lines.push(`  ✗ ${f.reason}: ${f.detail}`)
  return lines
}

function authLines (a: AuthExplanation): string[] {
  const how = a.methods.map((m) => m === 'jwt' ? 'a JWT access token (Authorization: Bearer …)' : 'an API key (x-api-key, or Authorization: Bearer …)').join(' or ')
  const claims = Object.entries(a.requiredClaims).map(([claim, value]) => `${claim} holding "${value}"`)
  return [
    `Credentials: required before forwarding: ${how}.`,
    `  without valid ones: ${a.denied.status} ${a.denied.code}, with the CORS headers above (the page can read it) and WWW-Authenticate: ${a.denied.wwwAuthenticate}`,
    ...(claims.length === 0 ? [] : [`  a valid token without ${claims.join(' and ')}: ${ERRORS.forbidden.status} forbidden (insufficient_scope)`]),
    ...(a.methods.includes('jwt') ? [`  the identity provider unreachable and no usable cached key: ${ERRORS.auth_unavailable.status} auth_unavailable with Retry-After`] : [])
  ]
}

export function formatExplanation (e: Explanation): string {
  const r = e.request
  const out: string[] = []
  out.push(`Request: ${r.method} ${r.path ?? '(any path)'} from origin ${r.origin ?? '(none)'}` +
    (r.headers.length > 0 ? ` with headers ${r.headers.join(', ')}` : '') + (r.privateNetwork ? ' to a private network' : ''))
  if (r.origin === undefined) {
    out.push('', 'No Origin header: this is not a CORS request. It is forwarded untouched (only Vary and forwarding headers are added).')
  }
  if (e.preflight !== undefined) {
    const p = e.preflight
    out.push('', `1. Preflight: the browser first sends OPTIONS (non-safelisted method, header or private network): ${p.decision.outcome.toUpperCase()} → ${p.status}`)
    out.push(...decisionLines(p.decision), '  response:', ...headerLines(p.status, p.decision))
  } else if (r.origin !== undefined) {
    out.push('', '1. Preflight: not needed (safelisted method, no non-safelisted headers).')
  }
  if (e.actual !== undefined) {
    const a = e.actual
    const label = a.decision.outcome.toUpperCase()
    out.push('', `${r.origin === undefined ? '' : '2. '}Request: ${label}${a.status === undefined ? ' → forwarded to the upstream' : ` → ${a.status} from the sidecar`}` +
      (e.route === undefined ? '' : ` (route ${e.route})`))
    if (a.decision.outcome === 'denied' && a.status === undefined && r.path === undefined) {
      out.push('  cors.enforce is false: forwarded without CORS headers, so the page cannot read the response.')
    }
    out.push(...decisionLines(a.decision), '  response headers added by the sidecar:', ...headerLines(a.status ?? '<upstream status>', a.decision))
  }
  if (e.auth !== undefined) out.push('', ...authLines(e.auth))
  out.push('', `Verdict: ${e.verdict === 'allowed' ? 'ALLOWED: the page can read the response' : e.verdict === 'denied' ? 'DENIED: the browser reports a CORS error' : 'not a CORS request'}`)
  for (const h of e.hints) out.push(`Hint: ${h}`)
  return out.join('\n') + '\n'
}
