// The public application: request id → CORS preflight → route allowlist → origin enforcement →
// forward (DESIGN.md, "Request path"). It builds a fastify instance and never listens (main.ts does).
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Admission, AdmissionRejected } from './admission.ts'
import { ByteCounter, collect, lingeringClose } from './body.ts'
import type { ConfigStore } from './config/store.ts'
import type { Snapshot } from './config/load.ts'
import type { CorsDecision } from './cors/decide.ts'
import { BodyDeadlineError, BodyIdleError, ERRORS, errorBody, UpstreamDeadlineError, upstreamErrorCode, type ErrorCode } from './errors.ts'
import { countDenial, statusClass, type Metrics, type UpstreamErrorKind } from './metrics.ts'
import { forwardedHeaders, HOP_BY_HOP, rawError, requestId, selfOrigin } from './forwarding.ts'
import { gate } from './http/gate.ts'
import { RateLimiter } from './http/rate-limit.ts'
import { relay, type Forwarded } from './http/relay.ts'
import { earlyPreflight } from './http/preflight.ts'
import { createUpstreamPool, REPLAYABLE_BODY_BYTES } from './upstream-pool.ts'
import { WebSocketProxy } from './websocket.ts'

export interface PublicAppDeps {
  store: ConfigStore
  logger: FastifyBaseLogger
  metrics: Metrics
  /**
   * True from SIGTERM on: every answer carries `Connection: close`, so clients move their
   * connections elsewhere while this one drains (docs/OPERATIONS.md, Shutdown).
   */
  draining?: () => boolean
  /** True once the listener has closed: WebSocket upgrades get 503 shutting_down. */
  closing?: () => boolean
}


/** Retry-After for the 503s of a full or slow queue: short, since a slot frees as soon as one request ends. */
const RETRY_AFTER_SECONDS = '1'


declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocket passthrough (websocket.ts); server.ts ends its sessions at shutdown.timeout. */
    websockets: WebSocketProxy
  }
  interface FastifyRequest {
    snap: Snapshot
    cors: CorsDecision | undefined
    /** The configured route that matched (a bounded label), or undefined. */
    route: string | undefined
    errorCode: ErrorCode | undefined
    forwarded: Forwarded | undefined
    /** Set by the body parser. */
    bodyCounter: ByteCounter | undefined
    /** The report-only policy's decision, when it differs from the active one. */
    shadow: CorsDecision | undefined
  }
}


const round = (ms: number): number => Math.round(ms * 100) / 100

export function sendError (reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  reply.request.errorCode = code
  // An answer that leaves part of the body unread closes the connection without resetting it.
  const raw = reply.request.raw
  if (reply.getHeader('connection') === 'close' && !raw.complete) lingeringClose(raw.socket)
  return reply.code(ERRORS[code].status).type('application/json; charset=utf-8').send(errorBody(code, reply.request.id, message))
}

/** A connection-level failure before any request exists: our JSON shape, no request data logged. */
function clientErrorHandler (m: Metrics, log: FastifyBaseLogger) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const [code, kind]: [ErrorCode, string] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['request_timeout', 'timeout']
      : err.code === 'HPE_HEADER_OVERFLOW' ? ['headers_too_large', 'header_overflow']
        : ['bad_request', 'malformed']
    m.clientErrors.inc({ kind })
    // Only the parser's code: the error also carries the raw bytes received, which may be personal data.
    log.info({ code: err.code, kind }, 'client error')
    socket.end(rawError(code))
  }
}

export async function buildPublicApp (deps: PublicAppDeps): Promise<FastifyInstance> {
  const initial = deps.store.current()
  const trusted = initial.config.server.trustProxy
  const trustProxy = trusted !== false
  // The client IP is taken that many hops from the right of X-Forwarded-For: hop 0 is the peer
  // (our proxy), each trusted hop lets proxy-addr look one entry further left. (fastify's own
  // numeric trustProxy fails closed by design, so the count is given as a function.)
  const hops = trusted === true ? 1 : trusted === false ? 0 : trusted
  const trustHops = (_address: string, hop: number): boolean => hop < hops
  const m = deps.metrics
  const closing = deps.closing ?? (() => false)
  const draining = deps.draining ?? (() => false)
  const early = earlyPreflight({ current: () => deps.store.current(), metrics: m, logger: deps.logger, draining })
  const app = Fastify({
    // The server is ours so that an allowed preflight is answered before fastify sees it (its
    // answer is precomputed: http/preflight.ts); everything else goes to fastify's handler.
    serverFactory: (handler) => {
      const server = createServer({
        maxHeaderSize: initial.config.server.maxHeaderBytes,
        headersTimeout: initial.ms.headersTimeout,
        // Node checks header and request timeouts on this interval (default 30 s, too coarse for 10 s).
        connectionsCheckingInterval: Math.min(1000, initial.ms.headersTimeout),
        // Node would answer a missing Host with an empty 400; the gate answers it in our JSON.
        requireHostHeader: false,
        keepAliveTimeout: initial.ms.keepAliveTimeout,
        // No cap on receiving a whole request: a 50 MB upload on a slow link is legitimate. Idle
        // bodies are cut by limits.bodyIdleTimeout instead, and slow headers by server.headersTimeout.
        requestTimeout: 0
      }, (req, res) => { if (!early(req, res)) handler(req, res) })
      return server
    },
    clientErrorHandler: clientErrorHandler(deps.metrics, deps.logger),
    loggerInstance: deps.logger,
    // Fastify's own request lines log the URL with its query string: off; onResponse writes ours.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    trustProxy: trustHops,
    genReqId: requestId,
    // Requests that arrive on open connections while closing are served (with Connection: close).
    return503OnClosing: false,
    // A request target the router cannot decode (`/%zz`) gets our JSON error, not fastify's shape.
    frameworkErrors: (_err, _request, reply) => { sendError(reply, 'bad_request', 'The request target is not a valid URL.') }
  })

  app.decorateRequest('snap', null as unknown as Snapshot)
  app.decorateRequest('cors', undefined)
  app.decorateRequest('route', undefined)
  app.decorateRequest('errorCode', undefined)
  app.decorateRequest('forwarded', undefined)
  app.decorateRequest('bodyCounter', undefined)
  app.decorateRequest('shadow', undefined)

  const upstream = initial.config.upstream
  const pool = createUpstreamPool(upstream.url, {
    connections: upstream.maxConcurrent,
    pipelining: 1,
    connect: { timeout: initial.ms.connectTimeout },
    keepAliveTimeout: initial.ms.upstreamKeepAliveTimeout,
    // Time for the model to start answering, and the longest silence within its answer; the whole
    // exchange is capped by upstream.requestTimeout in the relay.
    headersTimeout: Math.min(initial.ms.upstreamHeadersTimeout, initial.ms.requestTimeout),
    bodyTimeout: initial.ms.requestTimeout,
    onRetry: (requestId) => {
      m.upstreamRetries.inc({ reason: 'reused_connection_closed' })
      deps.logger.info({ requestId, reason: 'reused_connection_closed' }, 'the upstream closed a reused connection before answering: sent again on a fresh connection')
    }
  })
  // After the server has closed (and so every exchange ended): fastify runs onClose hooks last-in first.
  app.addHook('onClose', async () => { await pool.destroy() })
  const relayDeps = { pool, metrics: m, upstreamHost: new URL(upstream.url).host, trustProxy, sendError: (reply: FastifyReply, code: ErrorCode) => { sendError(reply, code) } }

  const admission = new Admission({
    maxConcurrent: upstream.maxConcurrent,
    queueSize: upstream.queue.size,
    queueTimeoutMs: initial.ms.queueTimeout,
    metrics: m
  })

  // WebSocket upgrades bypass fastify's routing (websocket.ts) but share its admission slots.
  const websockets = new WebSocketProxy({ server: app.server, store: deps.store, logger: deps.logger, metrics: m, admission, closing, trustProxy })
  app.decorate('websockets', websockets)
  // Whoever closes the app (graceful shutdown after shutdown.delay, or a test) closes the open
  // WebSockets with 1001 first: the server's close would otherwise wait on them for ever.
  app.addHook('preClose', async () => { websockets.closeAll() })

  // Bodies are never parsed. A small one with a declared length is read into one Buffer before it
  // is admitted: undici then writes head and body together, and the request can be sent again if
  // the upstream closes a reused connection on it (upstream-pool.ts). Every other body streams to
  // the upstream as it arrives, counted against limits.maxBodyBytes.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (req, payload, done) => {
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) <= REPLAYABLE_BODY_BYTES) {
      collect(payload, req.snap.ms.bodyIdleTimeout, req.snap.ms.requestTimeout, done)
      return
    }
    const counter = new ByteCounter(req.snap.config.limits.maxBodyBytes)
    req.bodyCounter = counter
    payload.on('error', (err) => counter.destroy(err))
    done(null, payload.pipe(counter))
  })

  app.addHook('onRequest', async (request, reply) => {
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
      headerCount: raw.rawHeaders.length / 2,
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
  })

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
  app.all('*', async (request, reply) => {
    // The optional per-client limit, after the gate so that what it refuses is real traffic; keyed
    // by request.ip, which honours X-Forwarded-For only with trustProxy.
    const limit = request.snap.config.limits.rateLimit
    if (limit.enabled) {
      const retryAfter = limiter.take(request.ip, limit.max, request.snap.ms.rateLimitWindow)
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
  })

  app.setNotFoundHandler((request, reply) => { sendError(reply, 'not_found') })

  // What Node handles before any route is answered in our JSON too. CONNECT would make this a
  // tunnel: never. An Expect other than 100-continue cannot be met (RFC 9110 §10.1.1).
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => { socket.end(rawError('method_not_allowed')) })
  app.server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = errorBody('expectation_failed', '-')
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body)
  })
  app.setErrorHandler((err, request, reply) => {
    // A held body that stopped arriving (limits.bodyIdleTimeout) or came too slowly
    // (upstream.requestTimeout): the client's delay, not the upstream's. The rest is not drained.
    if (err instanceof BodyIdleError || err instanceof BodyDeadlineError) { reply.header('connection', 'close'); sendError(reply, 'request_timeout'); return }
    // Fastify's own refusals of a malformed request (e.g. an unparsable Content-Type) are the
    // client's fault: a 400, not a 500. Its message may quote the request, so it is not logged.
    const status = (err as { statusCode?: number }).statusCode
    if (status !== undefined && status >= 400 && status < 500) {
      request.log.info({ code: (err as { code?: string }).code }, 'malformed request')
      sendError(reply, 'bad_request')
      return
    }
    // Anything else that fails is ours: a JSON 500 that still carries the CORS headers, never a crash.
    request.log.error({ err }, 'unexpected error')
    sendError(reply, 'internal_error')
  })

  // A client that leaves before its answer gets no onResponse: one line for it all the same.
  app.addHook('onRequestAbort', async (request) => {
    request.log.info({ method: request.raw.method, route: request.route, aborted: true, bytesIn: request.forwarded?.bytesIn() }, 'request aborted by the client')
  })

  app.addHook('onResponse', async (request, reply) => {
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
      error: request.errorCode
    }
    // Allowed preflights are the bulk of CORS traffic and say little: debug, so they do not
    // dominate logging cost at load. A denied one is the interesting case and stays at info.
    if (preflight && d?.outcome === 'allowed') request.log.debug(line, 'request')
    else request.log.info(line, 'request')
  })

  return app
}
