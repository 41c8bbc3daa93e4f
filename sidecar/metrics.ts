// Every metric the sidecar exports, created on an injected Registry (never prom-client's global one).
// All names start with `pai_sidecar_`: the Private AI container already exports `http_requests_total`.
// Label values are bounded by the configuration (routes, allowlist entries) or by fixed sets; never a
// raw path, Origin string, query or user value. docs/METRICS.md documents each one (a test checks).
import type { ErrorCode } from './errors.ts'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { CorsDecision } from './cors/decide.ts'

export const PREFIX = 'pai_sidecar_'

/** From a cached preflight (ms) to a large file through the model (minutes). */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset'

/** The upstream_errors_total kind of each upstream error code: one classification for HTTP and WebSocket. */
export const UPSTREAM_ERROR_KIND: Partial<Record<ErrorCode, UpstreamErrorKind>> = {
  upstream_unavailable: 'connect',
  upstream_timeout: 'timeout',
  upstream_error: 'reset'
}

export interface Metrics {
  registry: Registry
  requests: Counter<'route' | 'method' | 'status_class' | 'cors' | 'cors_entry'>
  requestDuration: Histogram<'route' | 'method' | 'status_class'>
  upstreamDuration: Histogram<'route' | 'status_class'>
  preflights: Counter<'result' | 'cors_entry'>
  corsDenials: Counter<'reason' | 'kind'>
  inFlight: Gauge
  upstreamInFlight: Gauge
  requestBytes: Counter<'route'>
  responseBytes: Counter<'route'>
  upstreamErrors: Counter<'kind'>
  upstreamRetries: Counter<'reason'>
  upstreamUp: Gauge
  configReloads: Counter<'result'>
  tlsReloads: Counter<'result'>
  tlsCertificateExpiry: Gauge<'serial'>
  queueDepth: Gauge
  queueCapacity: Gauge
  queueWait: Histogram
  queueRejections: Counter<'reason'>
  clientErrors: Counter<'kind'>
  auth: Counter<'method' | 'result' | 'reason'>
  authProviderFetches: Counter<'kind' | 'result'>
  authKeyFileReloads: Counter<'result'>
  shadowDecisions: Counter<'active' | 'shadow'>
  websocketUpgrades: Counter<'outcome'>
  websocketConnections: Gauge
  websocketMessages: Counter<'direction'>
  websocketBytes: Counter<'direction'>
  websocketCloses: Counter<'closed_by'>
}

/** Directions of WebSocket traffic (a bounded label). */
export type WebSocketDirection = 'to_upstream' | 'to_client'
/** Why a WebSocket session ended (a bounded label). */
export type WebSocketClosedBy = 'client' | 'upstream' | 'idle' | 'message_too_big' | 'shutdown'

export interface MetricsOptions {
  version: string
  /** Read at scrape time, so a reload needs no bookkeeping here. */
  config: () => { hash: string; generation: number }
}

export function createMetrics (registry: Registry, opts: MetricsOptions): Metrics {
  const registers = [registry]
  const m: Metrics = {
    registry,
    requests: new Counter({
      name: `${PREFIX}requests_total`,
      help: 'Requests answered on the public port, preflights excepted (see preflights_total).',
      labelNames: ['route', 'method', 'status_class', 'cors', 'cors_entry'],
      registers
    }),
    requestDuration: new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time from the request arriving to the response finishing, preflights excepted.',
      labelNames: ['route', 'method', 'status_class'],
      buckets: DURATION_BUCKETS,
      registers
    }),
    upstreamDuration: new Histogram({
      name: `${PREFIX}upstream_duration_seconds`,
      help: 'Time from forwarding a request (its body included) to the upstream\'s response headers: mostly the model\'s work.',
      labelNames: ['route', 'status_class'],
      buckets: DURATION_BUCKETS,
      registers
    }),
    preflights: new Counter({
      name: `${PREFIX}preflights_total`,
      help: 'CORS preflights answered by the sidecar, by result and matching allowlist entry.',
      labelNames: ['result', 'cors_entry'],
      registers
    }),
    corsDenials: new Counter({
      name: `${PREFIX}cors_denials_total`,
      help: 'Denied CORS preflights and requests by their first failed check; kind is preflight or request (counted also when cors.enforce is false).',
      labelNames: ['reason', 'kind'],
      registers
    }),
    inFlight: new Gauge({ name: `${PREFIX}in_flight_requests`, help: 'Requests being handled on the public port.', registers }),
    upstreamInFlight: new Gauge({ name: `${PREFIX}upstream_in_flight_requests`, help: 'Requests forwarded to the upstream and not finished.', registers }),
    requestBytes: new Counter({ name: `${PREFIX}request_body_bytes_total`, help: 'Request body bytes forwarded to the upstream.', labelNames: ['route'], registers }),
    responseBytes: new Counter({ name: `${PREFIX}response_body_bytes_total`, help: 'Response body bytes relayed from the upstream.', labelNames: ['route'], registers }),
    upstreamErrors: new Counter({
      name: `${PREFIX}upstream_errors_total`,
      help: 'Forwarded requests that failed at the upstream: connect (refused or unreachable), timeout, reset.',
      labelNames: ['kind'],
      registers
    }),
    upstreamRetries: new Counter({
      name: `${PREFIX}upstream_retries_total`,
      help: 'Requests sent to the upstream a second time, on a fresh connection: reused_connection_closed (the upstream closed a kept-alive connection before answering it).',
      labelNames: ['reason'],
      registers
    }),
    upstreamUp: new Gauge({ name: `${PREFIX}upstream_up`, help: '1 when the last upstream health check answered 200, else 0.', registers }),
    configReloads: new Counter({ name: `${PREFIX}config_reloads_total`, help: 'Configuration reloads by result (success, failure).', labelNames: ['result'], registers }),
    tlsReloads: new Counter({ name: `${PREFIX}tls_reloads_total`, help: 'Changes of the server.tls certificate files by result: success (now served), failure (refused; the last good pair still serves).', labelNames: ['result'], registers }),
    tlsCertificateExpiry: new Gauge({ name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`, help: 'When the certificate served on the public port expires (Unix time), labelled with its serial number; absent without server.tls.', labelNames: ['serial'], registers }),
    queueDepth: new Gauge({ name: `${PREFIX}queue_depth`, help: 'Requests waiting for an upstream slot (admission queue).', registers }),
    queueCapacity: new Gauge({ name: `${PREFIX}queue_capacity`, help: 'The admission queue size (upstream.queue.size).', registers }),
    queueWait: new Histogram({
      name: `${PREFIX}queue_wait_seconds`,
      help: 'Time admitted requests waited for an upstream slot (0 when one was free).',
      buckets: DURATION_BUCKETS,
      registers
    }),
    queueRejections: new Counter({
      name: `${PREFIX}queue_rejections_total`,
      help: 'Requests not admitted: full (queue full), timeout (waited upstream.queue.timeout), abandoned (client left while queued).',
      labelNames: ['reason'],
      registers
    }),
    shadowDecisions: new Counter({
      name: `${PREFIX}shadow_decisions_total`,
      help: 'CORS requests and preflights decided by both the active policy and the report-only shadow policy, by the two outcomes.',
      labelNames: ['active', 'shadow'],
      registers
    }),
    websocketUpgrades: new Counter({
      name: `${PREFIX}websocket_upgrades_total`,
      help: 'WebSocket upgrade requests by outcome: accepted, abandoned (client left before the handshake), or the error code of the refusal.',
      labelNames: ['outcome'],
      registers
    }),
    websocketConnections: new Gauge({ name: `${PREFIX}websocket_connections`, help: 'WebSockets open through the sidecar.', registers }),
    websocketMessages: new Counter({
      name: `${PREFIX}websocket_messages_total`,
      help: 'WebSocket messages relayed, by direction (to_upstream, to_client).',
      labelNames: ['direction'],
      registers
    }),
    websocketBytes: new Counter({
      name: `${PREFIX}websocket_message_bytes_total`,
      help: 'WebSocket message payload bytes relayed, by direction (to_upstream, to_client).',
      labelNames: ['direction'],
      registers
    }),
    websocketCloses: new Counter({
      name: `${PREFIX}websocket_closes_total`,
      help: 'WebSocket sessions ended, by what ended them: client, upstream, idle, message_too_big, shutdown.',
      labelNames: ['closed_by'],
      registers
    }),
    auth: new Counter({
      name: `${PREFIX}auth_total`,
      help: 'Authentication outcomes (when auth is configured): method (jwt, api_key, none), result (accepted, unauthorized, forbidden, auth_unavailable) and a bounded reason.',
      labelNames: ['method', 'result', 'reason'],
      registers
    }),
    authProviderFetches: new Counter({
      name: `${PREFIX}auth_provider_fetches_total`,
      help: 'Requests to the identity provider, by kind (discovery, jwks) and result (success, failure).',
      labelNames: ['kind', 'result'],
      registers
    }),
    authKeyFileReloads: new Counter({
      name: `${PREFIX}auth_key_file_reloads_total`,
      help: 'Changes of the API key file applied (success) or refused, the last good keys kept (failure).',
      labelNames: ['result'],
      registers
    }),
    clientErrors: new Counter({
      name: `${PREFIX}client_errors_total`,
      help: 'Connections refused before a request could be parsed: timeout (headers too slow), header_overflow, malformed.',
      labelNames: ['kind'],
      registers
    })
  }
  for (const reason of ['full', 'timeout', 'abandoned']) m.queueRejections.inc({ reason }, 0)
  for (const kind of ['connect', 'timeout', 'reset']) m.upstreamErrors.inc({ kind }, 0)
  m.upstreamRetries.inc({ reason: 'reused_connection_closed' }, 0)
  for (const result of ['success', 'failure']) {
    m.configReloads.inc({ result }, 0)
    m.authKeyFileReloads.inc({ result }, 0)
    for (const kind of ['discovery', 'jwks']) m.authProviderFetches.inc({ kind, result }, 0)
  }
  for (const direction of ['to_upstream', 'to_client']) {
    m.websocketMessages.inc({ direction }, 0)
    m.websocketBytes.inc({ direction }, 0)
  }

  new Gauge({
    name: `${PREFIX}build_info`,
    help: 'Always 1; the labels say which build is running.',
    labelNames: ['version', 'node_version'],
    registers
  }).set({ version: opts.version, node_version: process.version }, 1)
  // Registered for their collect(): nothing else holds them.
  // eslint-disable-next-line no-new
  new Gauge({
    name: `${PREFIX}config_info`,
    help: 'Always 1; hash identifies the active configuration.',
    labelNames: ['hash'],
    registers,
    collect () {
      this.reset()
      this.set({ hash: opts.config().hash }, 1)
    }
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: `${PREFIX}config_generation`,
    help: 'How many configurations have been accepted since start (1 = the initial one).',
    registers,
    collect () { this.set(opts.config().generation) }
  })
  collectDefaultMetrics({ register: registry, prefix: PREFIX })
  // prom-client names three gauges like counters; `promtool check metrics` rejects them, and a
  // rate() over a gauge misleads, so they are not exported. The per-type gauges
  // (pai_sidecar_nodejs_active_handles{type=…}) carry the same numbers.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(`${PREFIX}${name}`)
  return m
}

export function statusClass (status: number): string {
  return `${Math.floor(status / 100)}xx`
}

/** One denial per denied decision, under its first failed check (explain lists all of them). */
export function countDenial (m: Metrics, d: CorsDecision): void {
  m.corsDenials.inc({ reason: d.reason, kind: d.preflight ? 'preflight' : 'request' })
}

export const PROMETHEUS_TEXT = Registry.PROMETHEUS_CONTENT_TYPE
export const OPENMETRICS_TEXT = Registry.OPENMETRICS_CONTENT_TYPE

// prom-client renders OpenMetrics by renaming each counter in place (dropping `_total`), which would
// leak into the next Prometheus-format scrape of the same metric objects. So an OpenMetrics render
// borrows the metrics into a registry of that type and gives the names back, and renders are
// serialized so a Prometheus scrape never runs in between.
let rendering: Promise<unknown> = Promise.resolve()

async function renderOpenMetrics (registry: Registry): Promise<string> {
  const om = new Registry()
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never)
  const metrics = registry.getMetricsAsArray() as unknown as { name: string }[]
  const names = metrics.map((metric) => metric.name)
  for (const metric of metrics) om.registerMetric(metric as never)
  try {
    return await om.metrics()
  } finally {
    metrics.forEach((metric, i) => { metric.name = names[i] as string })
  }
}

/** The exposition in the format the scraper asked for (Prometheus asks for OpenMetrics first). */
export function exposition (registry: Registry, accept: string | undefined): Promise<{ contentType: string; body: string }> {
  const openMetrics = accept?.includes('application/openmetrics-text') === true
  const next = rendering.then(async () => openMetrics
    ? { contentType: OPENMETRICS_TEXT, body: await renderOpenMetrics(registry) }
    : { contentType: PROMETHEUS_TEXT, body: await registry.metrics() })
  rendering = next.catch(() => undefined)
  return next
}
