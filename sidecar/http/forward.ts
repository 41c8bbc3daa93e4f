// The route every request that passed the gate takes: the optional rate limit, then admission (a
// slot of upstream.maxConcurrent, or the queue), then the relay. The upstream_in_flight gauge and the
// slot follow the upstream exchange, not the client's connection.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AdmissionRejected, type Admission } from '../admission.ts'
import type { Metrics } from '../metrics.ts'
import { RETRY_AFTER_SECONDS, sendError } from './answer.ts'
import { RateLimiter } from './rate-limit.ts'
import { relay, type RelayDeps } from './relay.ts'

export interface ForwardDeps {
  admission: Admission
  metrics: Metrics
  relay: RelayDeps
}

export function forwardRoute (deps: ForwardDeps): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  const m = deps.metrics
  const relayDeps = deps.relay
  const admission = deps.admission
  const forward = (request: FastifyRequest, reply: FastifyReply, slot: () => void): void => {
    const counter = request.bodyCounter
    const held = Buffer.isBuffer(request.body) ? request.body : undefined
    // The gauge and the admission slot follow the upstream exchange, not the client's connection:
    // both end once the answer is fully received, the exchange failed, or the client left.
    m.upstreamInFlight.inc()
    let ended = false
    const release = (): void => {
      if (ended) return
      ended = true
      m.upstreamInFlight.dec()
      slot()
    }
    counter?.watchIdle(request.snap.ms.bodyIdleTimeout)
    request.forwarded = relay(relayDeps, {
      request,
      reply,
      body: held ?? counter ?? null,
      bytesIn: () => held !== undefined ? held.length : counter === undefined ? 0 : counter.seen,
      release
    })
  }

  const limiter = new RateLimiter()
  return async (request, reply) => {
    // The optional per-client limit, after the gate so that what it refuses is real traffic; keyed
    // by the authenticated caller when there is one, else by request.ip, which honours
    // X-Forwarded-For only with trustProxy.
    const limit = request.snap.config.limits.rateLimit
    if (limit.enabled) {
      const retryAfter = limiter.take(request.identity ?? request.ip, limit.max, request.snap.ms.rateLimitWindow)
      if (retryAfter !== undefined) {
        reply.header('retry-after', String(retryAfter))
        return sendError(reply, 'rate_limited')
      }
    }
    let release: () => void
    try {
      release = await admission.acquire((withdraw) => reply.raw.once('close', withdraw))
    } catch (err) {
      const reason = (err as AdmissionRejected).reason
      if (reason === 'abandoned') return reply // nobody is listening any more
      reply.header('retry-after', RETRY_AFTER_SECONDS)
      return sendError(reply, reason === 'full' ? 'queue_full' : 'queue_timeout')
    }
    forward(request, reply, release)
    return reply
  }
}
