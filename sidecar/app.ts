// The public application: request id → CORS preflight → route allowlist → origin enforcement →
// forward (DESIGN.md, "Request path"). It builds a fastify instance and never listens (main.ts does).
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import replyFrom from '@fastify/reply-from'
import { Admission, AdmissionRejected } from './admission.ts'
import { ByteCounter, collect, lingeringClose } from './body.ts'
import type { ConfigStore } from './config/store.ts'
import type { Snapshot } from './config/load.ts'
import type { CorsDecision } from './cors/decide.ts'
import { BodyDeadlineError, BodyIdleError, ERRORS, errorBody, UpstreamDeadlineError, upstreamErrorCode, type ErrorCode } from './errors.ts'
import { countDenial, statusClass, type Metrics, type UpstreamErrorKind } from './metrics.ts'
import { forwardedHeaders, HOP_BY_HOP, rawError, requestId, selfOrigin } from './forwarding.ts'
import { gate } from './http/gate.ts'
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

/** What happened on the way to the upstream and back, for the log line and the metrics. */
interface Forwarded {
  start: number
  status: number | undefined
  ms: number | undefined
  /** Body bytes sent up and relayed back, counted as they stream. */
  bytesIn: () => number
  bytesOut: () => number
}

/** Retry-After for the 503s of a full or slow queue: short, since a slot frees as soon as one request ends. */
const RETRY_AFTER_SECONDS = '1'

const UPSTREAM_ERROR_KIND: Partial<Record<ErrorCode, UpstreamErrorKind>> = {
  upstream_unavailable: 'connect',
  upstream_timeout: 'timeout',
  upstream_error: 'reset'
}

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

function mergeVary (upstream: string | string[], ours: string): string {
  const existing = (Array.isArray(upstream) ? upstream.join(',') : upstream).split(',').map((v) => v.trim()).filter((v) => v !== '')
  if (existing.includes('*')) return '*'
  const lower = new Set(existing.map((v) => v.toLowerCase()))
  for (const v of ours.split(', ')) if (!lower.has(v.toLowerCase())) existing.push(v)
  return existing.join(', ')
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
  await app.register(replyFrom, {
    base: upstream.url,
    disableRequestLogging: true,
    undici: createUpstreamPool(upstream.url, {
      connections: upstream.maxConcurrent,
      pipelining: 1,
      connect: { timeout: initial.ms.connectTimeout },
      keepAliveTimeout: initial.ms.upstreamKeepAliveTimeout,
      // Time for the model to start answering, and the longest silence within its answer; the whole
      // exchange is capped by upstream.requestTimeout in forward().
      headersTimeout: Math.min(initial.ms.upstreamHeadersTimeout, initial.ms.requestTimeout),
      bodyTimeout: initial.ms.requestTimeout,
      onRetry: (requestId) => {
        m.upstreamRetries.inc({ reason: 'reused_connection_closed' })
        deps.logger.info({ requestId, reason: 'reused_connection_closed' }, 'the upstream closed a reused connection before answering: sent again on a fresh connection')
      }
    })
  })

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

  // Optional per-client limit (off by default), after the CORS and route checks so that what it
  // refuses is real traffic; keyed by request.ip, which honours X-Forwarded-For only with trustProxy.
  await app.register(rateLimit, {
    hook: 'preHandler',
    allowList: (request) => !request.snap.config.limits.rateLimit.enabled,
    max: async (request) => request.snap.config.limits.rateLimit.max,
    timeWindow: async (request) => request.snap.ms.rateLimitWindow,
    errorResponseBuilder: () => ({ statusCode: 429, code: 'rate_limited', message: ERRORS.rate_limited.message })
  })

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
    // Bytes of the answer written to the client (the body, not its headers).
    let relayed = 0
    const counter = request.bodyCounter
    const held = Buffer.isBuffer(request.body) ? request.body : undefined
    const f: Forwarded = {
      start: performance.now(),
      status: undefined,
      ms: undefined,
      bytesIn: () => held !== undefined ? held.length : counter === undefined ? 0 : counter.seen,
      bytesOut: () => relayed
    }
    request.forwarded = f
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
    // upstream.requestTimeout caps the whole exchange, from here: a slow upload must not hold a GPU
    // slot for ever. Before the answer starts, the request body is failed, which aborts the upstream
    // request (504); once the answer is being relayed, the only honest signal left is to cut it short.
    let responding = false
    let cutOff = false
    const requestTimeout = request.snap.ms.requestTimeout
    const deadline = setTimeout(() => {
      cutOff = true
      m.upstreamErrors.inc({ kind: 'timeout' })
      request.log.warn({ timeoutMs: requestTimeout, responding }, 'upstream.requestTimeout passed: exchange cut off')
      if (responding) reply.raw.destroy(new UpstreamDeadlineError(requestTimeout))
      // With the body already sent, undici's headersTimeout (never longer than this) ends the wait.
      else counter?.destroy(new UpstreamDeadlineError(requestTimeout))
    }, requestTimeout)
    reply.raw.once('close', () => {
      clearTimeout(deadline)
      release()
    })
    reply.from(undefined, {
      // A held body is handed over as it is (reply-from then sets Content-Length from it, and
      // rewriteRequestHeaders puts the client's own Content-Type back).
      ...(held === undefined ? {} : { body: held, contentType: 'application/octet-stream' }),
      // Never retry: reply-from retries a GET answered 503 up to ten times by default, which would
      // multiply load on a GPU that just said it is overloaded. The client decides (Retry-After).
      retryDelay: () => null,
      // Its second argument is this same `reply`, typed more loosely by reply-from: `reply` is used.
      onResponse: (req, _reply, upstreamRes) => {
        // reply-from types this as a server response; it is undici's response to our request.
        const res = upstreamRes as unknown as { statusCode: number; headers: Record<string, string | string[] | undefined>; stream: Readable }
        responding = true
        f.status = res.statusCode
        f.ms = performance.now() - f.start
        m.upstreamDuration.observe({ route: req.route as string, status_class: statusClass(res.statusCode) }, f.ms / 1000)
        // The GPU's work is done once its answer is fully received: a client that reads slowly must
        // not keep the admission slot.
        res.stream.once('end', release)
        // reply-from answers an invalid upstream status itself (502) before calling this.
        if (reply.sent) { res.stream.destroy(); return }
        // The answer is written to the socket by hand rather than sent as a stream through fastify:
        // fastify's stream sending, with a counting Transform and pipe() between, cost ~30 % of the
        // CPU of a small proxied request (issue 8: `npm run bench:ab`, docs/BENCHMARKS.md). The
        // reply is hijacked only now, so everything before (errors, the 502 above) is fastify's;
        // onResponse still runs, on the response's 'finish'; onSend hooks do not (none is
        // registered, by us or @fastify/rate-limit: a header set in one would miss proxied
        // answers). Status and headers are what reply-from and rewriteHeaders have put on the
        // reply, with ours from onRequest.
        reply.hijack()
        const raw = reply.raw
        raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
        const body = res.stream
        // An upstream failure after the headers must end the client's response (cut short, the
        // only signal left) and be counted, instead of leaving it hanging.
        body.once('error', (err) => {
          // A client that went away aborts the exchange too: that is not the upstream's failure.
          if (!cutOff && !request.raw.socket.destroyed) {
            const kind = UPSTREAM_ERROR_KIND[upstreamErrorCode(err)] as UpstreamErrorKind
            m.upstreamErrors.inc({ kind })
            req.log.warn({ kind }, 'the upstream failed while its response was being relayed: cut off')
          }
          raw.destroy(err)
        })
        // Closed without its end and without an error: the answer is incomplete, never pass it off
        // as whole (a no-op when the response is already gone).
        body.once('close', () => { if (!body.readableEnded) raw.destroy(new Error('the upstream response closed before its end')) })
        // A client that went away (or the deadline) closes the response early: stop reading the
        // upstream. That is not the upstream's failure, so nothing is counted.
        raw.once('close', () => { if (!body.readableEnded) body.destroy() })
        // Backpressure by hand: a slow client pauses the upstream's body, its 'drain' resumes it.
        body.on('data', (chunk: Buffer) => {
          relayed += chunk.length
          if (!raw.write(chunk)) body.pause()
        })
        raw.on('drain', () => body.resume())
        body.once('end', () => raw.end())
      },
      // reply-from has already removed `Connection` and the headers it names (RFC 9110 §7.6.1).
      rewriteRequestHeaders: (req, h) => {
        for (const name of HOP_BY_HOP) delete h[name]
        const type = req.headers['content-type']
        if (held !== undefined) {
          if (type === undefined) delete h['content-type']
          else h['content-type'] = type
        }
        // Client-supplied X-Forwarded-* are believed only from a trusted proxy; otherwise replaced.
        Object.assign(h, forwardedHeaders(req.raw as IncomingMessage, trustProxy))
        h['x-request-id'] = req.id
        return h
      },
      rewriteHeaders: (h, req) => {
        const out: Record<string, string | string[] | undefined> = {}
        const connection = h.connection
        const listed = typeof connection === 'string' ? connection.toLowerCase().split(',').map((s) => s.trim()) : []
        for (const name of Object.keys(h)) {
          // The upstream's own CORS headers never reach the browser: the sidecar's policy is the only one.
          if (name.startsWith('access-control-') || HOP_BY_HOP.has(name) || listed.includes(name)) continue
          out[name] = h[name]
        }
        // Only forwarded requests get here, and onRequest decided CORS for every one of them.
        const request = req as FastifyRequest
        const vary = (request.cors as CorsDecision).vary
        if (vary !== undefined && out.vary !== undefined) out.vary = mergeVary(out.vary as string | string[], vary)
        out['x-request-id'] = request.id
        return out
      },
      onError: (r, { error }) => {
        release()
        const code = upstreamErrorCode(error)
        const kind = UPSTREAM_ERROR_KIND[code]
        // A client that went away mid-upload fails the upstream request too: that is not the
        // upstream's fault, and nobody is left to answer (onRequestAbort logs it).
        if (request.raw.socket.destroyed) return
        if (kind !== undefined && !cutOff) m.upstreamErrors.inc({ kind })
        // The rest of an unread body is not drained: close the connection after the answer.
        if (kind === undefined || !request.raw.complete) r.header('connection', 'close')
        sendError(r as unknown as FastifyReply, code)
      }
    })
  }

  app.all('*', async (request, reply) => {
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
    // @fastify/rate-limit throws what errorResponseBuilder built; its Retry-After header is already set.
    if ((err as { code?: string }).code === 'rate_limited') { sendError(reply, 'rate_limited'); return }
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
