// Authentication, as a step of the gate hook (docs/ARCHITECTURE.md, "The request path"): run after a
// `pass` verdict, so after the preflight answer, the route allowlist and origin enforcement, and
// before the body, the rate limit and admission, so that a refused request never queues and never
// reaches the upstream. A refusal carries the CORS headers already on the reply, so the page can read
// it. Counted by outcome; the request keeps only the outcome and an identity reference for its log line.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthResult, Authenticator } from '../auth/authenticate.ts'
import type { Metrics } from '../metrics.ts'
import { sendError } from './answer.ts'

/** What the access log says about authentication: never the credential, a claim or the identity itself. */
export interface AuthNote { method: string; result: string; reason: string; ref: string | undefined }

export function countAuth (m: Metrics, r: AuthResult): void {
  m.auth.inc({ method: r.method, result: r.ok ? 'accepted' : r.code, reason: r.reason })
}

export async function authenticateStep (auth: Authenticator, m: Metrics, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const r = await auth.authenticate(request.raw.headers)
  countAuth(m, r)
  if (!r.ok) {
    request.auth = { method: r.method, result: r.code, reason: r.reason, ref: undefined }
    reply.headers(r.headers)
    return sendError(reply, r.code)
  }
  request.auth = { method: r.method, result: 'accepted', reason: r.reason, ref: r.ref }
  // The rate limit counts this caller, not its IP (several callers may share one).
  request.identity = r.identity
  // As Envoy's jwt_authn does unless told to forward: the upstream never sees the credential.
  request.dropCredentials = !r.forwardCredentials
  return undefined
}
