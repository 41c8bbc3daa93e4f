// The public application, composed in the order a request travels (docs/ARCHITECTURE.md, "The
// request path"): an allowed preflight is answered from its precomputed response before fastify
// (http/preflight.ts); everything else meets the gate (http/gate-hook.ts → http/gate.ts), has its
// body held or streamed (http/body.ts), is rate-limited, admitted and relayed to the upstream
// (http/forward.ts → http/relay.ts), and is logged once answered (http/access-log.ts). WebSocket
// upgrades take websocket.ts. It builds a fastify instance and never listens (server.ts does).
import type { Server } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import { Admission } from './admission.ts'
import type { AuthOptions } from './auth/authenticate.ts'
import { authEvents } from './auth/events.ts'
import { AuthProvider } from './auth/provider.ts'
import type { ConfigStore } from './config/store.ts'
import { requestId } from './forwarding.ts'
import type { Metrics } from './metrics.ts'
import { abortLog, accessLog } from './http/access-log.ts'
import { sendError } from './http/answer.ts'
import { bodyParser } from './http/body.ts'
import { REQUEST_FIELDS } from './http/context.ts'
import { forwardRoute } from './http/forward.ts'
import { gateHook } from './http/gate-hook.ts'
import { earlyPreflight } from './http/preflight.ts'
import { clientErrorHandler, errorHandler, refuseAtNodeLevel } from './http/refusals.ts'
import { createUpstreamPool } from './http/upstream-pool.ts'
import { createPublicServer } from './http/listener.ts'
import type { TlsPair } from './tls.ts'
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
  /** Tests only: the key file's watch timings, the fetch used to reach the identity provider. */
  authOptions?: AuthOptions
  /** With server.tls: the pair read at start (tls.ts); the server then speaks HTTPS, HTTP/2 and HTTP/1.1. */
  tls?: TlsPair | undefined
  /** Tests only: what the relay dispatches to, in place of the upstream pool itself (to delay it). */
  wrapUpstream?: (pool: Dispatcher) => Dispatcher
}

export async function buildPublicApp (deps: PublicAppDeps): Promise<FastifyInstance> {
  const initial = deps.store.current()
  const { server: serverConfig, upstream } = initial.config
  const trusted = serverConfig.trustProxy
  const trustProxy = trusted !== false
  // The client IP is taken that many hops from the right of X-Forwarded-For: hop 0 is the peer
  // (our proxy), each trusted hop lets proxy-addr look one entry further left. (fastify's own
  // numeric trustProxy fails closed by design, so the count is given as a function.)
  const hops = trusted === true ? 1 : trusted === false ? 0 : trusted
  const m = deps.metrics
  const closing = deps.closing ?? (() => false)
  const draining = deps.draining ?? (() => false)

  // 1. Allowed preflights, before fastify: the server is ours so that they can be.
  const early = earlyPreflight({ current: () => deps.store.current(), metrics: m, logger: deps.logger, draining })
  const app = Fastify({
    // HTTP/1.1, or with server.tls HTTPS with HTTP/2 (http/listener.ts). fastify sees HTTP/2
    // requests through Node's compatibility API, one request and one response per stream.
    serverFactory: (handler) => createPublicServer(initial, deps.tls, (req, res) => { if (!early(req, res)) handler(req, res) }) as Server,
    clientErrorHandler: clientErrorHandler(m, deps.logger),
    loggerInstance: deps.logger,
    // Fastify's own request lines log the URL with its query string: off; onResponse writes ours.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    trustProxy: (_address: string, hop: number): boolean => hop < hops,
    genReqId: requestId,
    // Requests that arrive on open connections while closing are served (with Connection: close).
    return503OnClosing: false,
    // A request target the router cannot decode (`/%zz`) gets our JSON error, not fastify's shape.
    frameworkErrors: (_err, _request, reply) => { sendError(reply, 'bad_request', 'The request target is not a valid URL.') }
  })
  for (const field of REQUEST_FIELDS) app.decorateRequest(field, undefined)
  refuseAtNodeLevel(app.server)

  // The upstream: one pool, and admission in front of it, shared with the WebSocket upgrades.
  const pool = createUpstreamPool(upstream.url, {
    connections: upstream.maxConcurrent,
    pipelining: 1,
    connect: { timeout: initial.ms.connectTimeout },
    keepAliveTimeout: initial.ms.upstreamKeepAliveTimeout,
    // Time for the model to start answering, and the longest silence within its answer; the whole
    // exchange is capped by upstream.requestTimeout in the relay.
    headersTimeout: Math.min(initial.ms.upstreamHeadersTimeout, initial.ms.requestTimeout),
    bodyTimeout: initial.ms.requestTimeout,
    onRetry: (id) => {
      m.upstreamRetries.inc({ reason: 'reused_connection_closed' })
      deps.logger.info({ requestId: id, reason: 'reused_connection_closed' }, 'the upstream closed a reused connection before answering: sent again on a fresh connection')
    }
  })
  // After the server has closed, and so every exchange has ended (onClose hooks run last-in first).
  app.addHook('onClose', async () => { await pool.destroy() })
  // Authentication (auth/), shared by the gate hook and the WebSocket upgrades.
  const auth = new AuthProvider(authEvents(m, deps.logger), deps.authOptions)
  app.addHook('onClose', async () => { auth.close() })
  const admission = new Admission({ maxConcurrent: upstream.maxConcurrent, queueSize: upstream.queue.size, queueTimeoutMs: initial.ms.queueTimeout, metrics: m })
  const websockets = new WebSocketProxy({ server: app.server, store: deps.store, logger: deps.logger, metrics: m, admission, closing, trustProxy, auth })
  app.decorate('websockets', websockets)
  // Whoever closes the app (graceful shutdown after shutdown.delay, or a test) closes the open
  // WebSockets with 1001 first: the server's close would otherwise wait on them for ever.
  app.addHook('preClose', async () => { websockets.closeAll() })

  // 2. The gate, and authentication when configured.
  app.addHook('onRequest', gateHook({ store: deps.store, metrics: m, trustProxy, draining, auth }))
  // 3. The body: held or streamed, never parsed.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', bodyParser)
  // 4. Rate limit, admission, relay.
  app.all('*', forwardRoute({
    admission,
    metrics: m,
    relay: { pool: deps.wrapUpstream?.(pool) ?? pool, metrics: m, upstreamHost: new URL(upstream.url).host, trustProxy, sendError: (reply, code) => { sendError(reply, code) } }
  }))
  app.setNotFoundHandler((_request, reply) => { sendError(reply, 'not_found') })
  app.setErrorHandler(errorHandler)
  // 5. The access log and the request metrics.
  app.addHook('onRequestAbort', abortLog)
  app.addHook('onResponse', accessLog(m))
  return app
}
