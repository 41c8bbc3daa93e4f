// The gate, as fastify's onRequest hook: the request's facts go to the pure gate (gate.ts), its
// verdict comes back as headers on the reply, a preflight answer or a refusal, plus the CORS and
// shadow metrics. A request that passes goes on to the route handler (forward.ts).
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthProvider } from '../auth/provider.ts'
import type { ConfigStore } from '../config/store.ts'
import { selfOrigin } from '../forwarding.ts'
import { countDenial, type Metrics } from '../metrics.ts'
import { sendError } from './answer.ts'
import { authenticateStep } from './authenticate.ts'
import { gate } from './gate.ts'
import { headerLines } from './h2.ts'

export interface GateHookDeps {
  store: ConfigStore
  metrics: Metrics
  trustProxy: boolean
  draining: () => boolean
  auth: AuthProvider
}

export function gateHook (deps: GateHookDeps): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const { metrics: m, trustProxy, draining } = deps
  return async (request, reply) => {
    const snap = deps.store.current()
    request.snap = snap
    const raw = request.raw
    const headers = raw.headers
    reply.header('x-request-id', request.id)
    // Draining: this answer ends its connection, so the client opens its next one elsewhere.
    if (draining()) reply.header('connection', 'close')
    m.inFlight.inc()
    reply.raw.once('close', () => m.inFlight.dec())
    const origin = headers.origin
    const verdict = gate(snap, {
      method: raw.method as string,
      url: raw.url as string,
      httpVersion: raw.httpVersion,
      host: headers.host,
      origin,
      selfOrigin: origin === undefined ? undefined : selfOrigin(raw, trustProxy),
      requestMethod: headers['access-control-request-method'],
      requestHeaders: headers['access-control-request-headers'],
      requestPrivateNetwork: headers['access-control-request-private-network'] as string | undefined,
      // Node keeps at most its maxHeadersCount (2000) lines; our limit is at most 1000, so this sees it.
      headerCount: headerLines(raw),
      contentLength: headers['content-length']
    })
    const d = verdict.cors
    request.cors = d
    request.route = verdict.route
    if (d !== undefined) {
      // The report-only policy (`shadow`) is decided on every CORS request and never applied:
      // operators see whom a candidate allowlist would treat differently before promoting it.
      const shadow = verdict.shadow
      if (shadow !== undefined) {
        m.shadowDecisions.inc({ active: d.outcome, shadow: shadow.outcome })
        if (shadow.outcome !== d.outcome) request.shadow = shadow
      }
      if (d.preflight) m.preflights.inc({ result: d.outcome, cors_entry: d.matched ?? '' })
      if (d.outcome === 'denied') countDenial(m, d)
    }
    reply.headers(verdict.headers)
    // Content-Length: 0 for older Safari; any 2xx is a success per Fetch.
    if (verdict.kind === 'preflight') return reply.code(204).header('content-length', '0').send()
    if (verdict.kind === 'refuse') return sendError(reply, verdict.code, verdict.message)
    // Preflights are never authenticated (Fetch, "CORS-preflight request": sent without credentials).
    const auth = deps.auth.for(snap)
    return auth === undefined ? undefined : await authenticateStep(auth, m, request, reply)
  }
}
