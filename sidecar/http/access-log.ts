// One line per request, and its metrics, once its answer has gone (fastify's onResponse): the
// configured route, never the raw path; no body, query string or credential (README, "Observability").
import type { FastifyReply, FastifyRequest } from 'fastify'
import { statusClass, type Metrics } from '../metrics.ts'

const round = (ms: number): number => Math.round(ms * 100) / 100

export function accessLog (m: Metrics): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    const d = request.cors
    const status = reply.statusCode
    const route = request.route ?? '(unmatched)'
    const method = request.raw.method as string
    const f = request.forwarded
    const preflight = d?.preflight === true
    if (!preflight) {
      const sc = statusClass(status)
      m.requests.inc({ route, method, status_class: sc, cors: d?.outcome ?? 'none', cors_entry: d?.matched ?? '' })
      m.requestDuration.observe({ route, method, status_class: sc }, reply.elapsedTime / 1000)
      if (f !== undefined) {
        m.requestBytes.inc({ route }, f.bytesIn())
        m.responseBytes.inc({ route }, f.bytesOut())
      }
    }
    const line = {
      method,
      route: request.route,
      status,
      durationMs: round(reply.elapsedTime),
      cors: d?.outcome,
      corsReason: d?.reason,
      corsMatched: d?.matched,
      shadow: request.shadow?.outcome,
      shadowReason: request.shadow?.reason,
      preflight,
      upstreamStatus: f?.status,
      upstreamMs: f?.ms === undefined ? undefined : round(f.ms),
      bytesIn: f?.bytesIn(),
      bytesOut: f?.bytesOut(),
      error: request.errorCode,
      // The outcome and a non-reversible reference to the caller at most (README, "Authentication").
      auth: request.auth?.result,
      authMethod: request.auth?.method,
      authReason: request.auth?.reason,
      authRef: request.auth?.ref
    }
    // Allowed preflights are the bulk of CORS traffic and say little: debug, so they do not
    // dominate logging cost at load. A denied one is the interesting case and stays at info.
    if (preflight && d?.outcome === 'allowed') request.log.debug(line, 'request')
    else request.log.info(line, 'request')
  }
}

/** A client that leaves before its answer gets no onResponse: one line for it all the same. */
export async function abortLog (request: FastifyRequest): Promise<void> {
  request.log.info({ method: request.raw.method, route: request.route, aborted: true, bytesIn: request.forwarded?.bytesIn() }, 'request aborted by the client')
}
