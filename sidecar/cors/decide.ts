// The CORS decision: a pure function from (policy snapshot, request facts) to an outcome, the reasons,
// and the exact response headers. No fastify here, so the same code answers requests, feeds the logs
// and metrics, and powers `explain` (WHATWG Fetch, "CORS protocol" and "CORS-preflight fetch").
import { parseRequestOrigin } from './origin.ts'
import { matchOrigin, type CorsPolicy } from './policy.ts'

export interface RequestFacts {
  method: string
  /** The Origin header as received; Node joins a repeated header with ", ", which then never parses. */
  origin: string | undefined
  /** This server's own origin as the client addressed it (scheme://host), for same-origin requests. */
  selfOrigin?: string | undefined
  /** Access-Control-Request-Method. */
  requestMethod?: string | undefined
  /** Access-Control-Request-Headers, all header lines joined with ",". */
  requestHeaders?: string | undefined
  /** Access-Control-Request-Private-Network. */
  requestPrivateNetwork?: string | undefined
}

/** Bounded set: these are metric label values. */
export type CorsReason =
  | 'allowed' | 'no_origin' | 'same_origin'
  | 'origin_not_allowed' | 'null_origin' | 'invalid_origin'
  | 'method_not_allowed' | 'header_not_allowed' | 'invalid_request_headers'
  | 'private_network_not_allowed'

export type CorsOutcome = 'none' | 'allowed' | 'same_origin' | 'denied'

export interface CorsFailure { reason: CorsReason; detail: string }

export interface CorsDecision {
  preflight: boolean
  outcome: CorsOutcome
  /** The first failure's reason, or why it passed. */
  reason: CorsReason
  /** Every check that failed, in the order a browser would hit them (explain shows all of them). */
  failures: CorsFailure[]
  /** The allowlist entry that matched the origin: a bounded label, never the raw Origin. */
  matched: string | undefined
  /** Access-Control-* response headers to send (empty when denied). */
  headers: Record<string, string>
  /** The Vary value this decision depends on, to merge with any upstream Vary. */
  vary: string | undefined
}

/** Methods a preflight never needs to list (Fetch: "CORS-safelisted method"), case-sensitive. */
export const SAFELISTED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST'])
/** RFC 9110 §5.6.2 token: method and header names. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/**
 * Bound on Access-Control-Request-Headers items: browsers send a handful, and a preflight must not
 * cost unbounded work.
 */
export const MAX_REQUEST_HEADERS = 64

export type ParsedHeaders = { ok: true; names: string[] } | { ok: false; detail: string }

/**
 * Access-Control-Request-Headers leniently: any case, optional whitespace, duplicates and empty items,
 * possibly several header lines; strictly bounded. Returns lower-case, sorted, unique names.
 */
export function parseRequestHeaders (value: string | undefined): ParsedHeaders {
  if (value === undefined) return { ok: true, names: [] }
  const names = new Set<string>()
  for (const raw of value.split(',')) {
    const name = raw.trim()
    if (name === '') continue
    if (!TOKEN.test(name)) return { ok: false, detail: `"${name.slice(0, 64)}" is not a header name` }
    names.add(name.toLowerCase())
    if (names.size > MAX_REQUEST_HEADERS) return { ok: false, detail: `more than ${MAX_REQUEST_HEADERS} header names requested` }
  }
  return { ok: true, names: [...names].sort() }
}

function originFailure (policy: CorsPolicy, origin: string): { matched: string } | CorsFailure {
  if (origin === 'null') return { reason: 'null_origin', detail: 'the "null" origin is never allowed' }
  const parsed = parseRequestOrigin(origin)
  if (parsed === undefined) return { reason: 'invalid_origin', detail: 'the Origin header is not a single serialized origin' }
  const matched = matchOrigin(policy, origin, parsed)
  if (matched === undefined) return { reason: 'origin_not_allowed', detail: 'no entry of allowedOrigins matches this origin' }
  return { matched }
}

function allowOriginHeaders (policy: CorsPolicy, origin: string, out: Record<string, string>): void {
  out['access-control-allow-origin'] = policy.staticAny ? '*' : origin
  if (policy.settings.allowCredentials) out['access-control-allow-credentials'] = 'true'
}

function exposeHeaders (policy: CorsPolicy, origin: string, out: Record<string, string>): void {
  allowOriginHeaders(policy, origin, out)
  if (policy.exposeHeadersValue !== undefined) out['access-control-expose-headers'] = policy.exposeHeadersValue
}

/** Decide a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method). */
export function decidePreflight (policy: CorsPolicy, facts: RequestFacts): CorsDecision {
  const failures: CorsFailure[] = []
  const origin = facts.origin ?? ''
  const o = originFailure(policy, origin)
  const matched = 'matched' in o ? o.matched : undefined
  if (!('matched' in o)) failures.push(o)

  const method = facts.requestMethod ?? ''
  const credentials = policy.settings.allowCredentials
  if (!TOKEN.test(method)) {
    failures.push({ reason: 'method_not_allowed', detail: 'Access-Control-Request-Method is not a method name' })
  } else if (!SAFELISTED_METHODS.has(method) && !policy.methods.has(method) && !policy.anyMethod) {
    failures.push({ reason: 'method_not_allowed', detail: `${method} is not in allowedMethods (method names are case-sensitive)` })
  }

  const requested = parseRequestHeaders(facts.requestHeaders)
  const names = requested.ok ? requested.names : []
  if (!requested.ok) failures.push({ reason: 'invalid_request_headers', detail: requested.detail })
  for (const name of names) {
    // `*` never covers Authorization (Fetch, "CORS-preflight fetch" step on headerNames).
    if (policy.headers.has(name) || (policy.anyHeader && name !== 'authorization')) continue
    failures.push({
      reason: 'header_not_allowed',
      detail: name === 'authorization' && policy.anyHeader
        ? 'authorization is not covered by "*"; list it explicitly in allowedHeaders'
        : `${name} is not in allowedHeaders`
    })
  }

  const privateNetwork = facts.requestPrivateNetwork === 'true'
  if (privateNetwork && !policy.settings.allowPrivateNetwork) {
    failures.push({ reason: 'private_network_not_allowed', detail: 'Access-Control-Request-Private-Network is set and allowPrivateNetwork is off' })
  }

  const headers: Record<string, string> = {}
  const first = failures[0]
  if (first === undefined) {
    allowOriginHeaders(policy, origin, headers)
    // With credentials a literal `*` is not a wildcard for the browser, so echo what was asked.
    const allowMethods = policy.anyMethod && credentials ? method : policy.allowMethodsValue
    if (allowMethods !== undefined) headers['access-control-allow-methods'] = allowMethods
    const allowHeaders = policy.anyHeader && credentials ? (names.length > 0 ? names.join(', ') : undefined) : policy.allowHeadersValue
    if (allowHeaders !== undefined) headers['access-control-allow-headers'] = allowHeaders
    if (policy.maxAgeValue !== undefined) headers['access-control-max-age'] = policy.maxAgeValue
    if (privateNetwork) headers['access-control-allow-private-network'] = 'true'
  }
  return {
    preflight: true,
    outcome: first === undefined ? 'allowed' : 'denied',
    reason: first === undefined ? 'allowed' : first.reason,
    failures,
    matched,
    headers,
    vary: policy.preflightVary
  }
}

/** Decide an actual (non-preflight) request: what to add to the response, and whether to refuse it. */
export function decideActual (policy: CorsPolicy, facts: RequestFacts): CorsDecision {
  const origin = facts.origin
  const headers: Record<string, string> = {}
  const decision = (outcome: CorsOutcome, reason: CorsReason, failures: CorsFailure[], matched?: string): CorsDecision =>
    // A static `*` answer is the same for every origin, so it needs no Vary; a refusal still depends on Origin.
    ({ preflight: false, outcome, reason, failures, matched, headers, vary: policy.staticAny && outcome !== 'denied' ? undefined : 'Origin' })
  if (origin === undefined) {
    // Fetch, "CORS protocol and HTTP caches": a resource that is public to every origin sends
    // `Access-Control-Allow-Origin: *` on every response, so a cached answer to a request without
    // Origin is still readable by a page. Otherwise the answer depends on Origin and carries Vary.
    if (policy.staticAny) exposeHeaders(policy, '*', headers)
    return decision('none', 'no_origin', [])
  }
  const o = originFailure(policy, origin)
  if ('matched' in o) {
    exposeHeaders(policy, origin, headers)
    return decision('allowed', 'allowed', [], o.matched)
  }
  // Browsers send Origin on same-origin POSTs too; those need no CORS headers and are not refused.
  if (facts.selfOrigin !== undefined && origin === facts.selfOrigin) return decision('same_origin', 'same_origin', [])
  return decision('denied', o.reason, [o])
}

/** A preflight is OPTIONS with both Origin and Access-Control-Request-Method (Fetch, "CORS-preflight request"). */
export function isPreflight (method: string, origin: string | undefined, requestMethod: string | undefined): boolean {
  return method === 'OPTIONS' && origin !== undefined && requestMethod !== undefined
}
