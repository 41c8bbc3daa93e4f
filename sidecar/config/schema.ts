// The configuration schema. It is the JSON Schema that validates the YAML file *and* the TypeScript
// type of the validated configuration (TypeBox), so the two cannot drift apart. Every field has a
// default except the ones whose absence means something (cors.maxAge: header not sent; shadow: none).
import { Type, type Static } from '@sinclair/typebox'
import type { CorsSettings } from '../cors/policy.ts'

/** `250ms`, `30s`, `5m`, `1h`: a unit is required, so `30` can never silently mean 30 ms. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h)$'
const duration = (def: string) => Type.String({ pattern: DURATION_PATTERN, default: def, description: 'a duration with a unit: 250ms, 30s, 5m, 1h' })
const host = (def: string) => Type.String({ minLength: 1, default: def })
const port = (def: number) => Type.Integer({ minimum: 0, maximum: 65535, default: def })
const Strict = { additionalProperties: false } as const

const strings = (defaults: string[], description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { default: defaults, description })

export const CorsBlock = Type.Object({
  allowedOrigins: strings([], 'exact origins, https://*.example.com (subdomains), http://localhost:* (any port), or *'),
  allowedMethods: strings(['POST'], 'methods a preflight may ask for (case-sensitive); GET, HEAD and POST need no listing'),
  allowedHeaders: strings(['content-type', 'x-request-id'], 'request headers a preflight may ask for; * never covers authorization'),
  exposedHeaders: strings(['x-request-id'], 'response headers the page may read'),
  allowCredentials: Type.Boolean({ default: false }),
  maxAge: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400, description: 'seconds; omitted = header not sent' })),
  allowPrivateNetwork: Type.Boolean({ default: false }),
  enforce: Type.Boolean({ default: true, description: 'refuse disallowed cross-origin requests with 403 (false: forward them without CORS headers)' })
}, { ...Strict, default: {} })

export const Route = Type.Object({
  path: Type.String({ pattern: '^/', description: 'exact path, or a prefix when it ends in "/"' }),
  methods: Type.Array(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }), { minItems: 1 })
}, Strict)

/** Private AI 4.x routes (no prefix) and the 3.x generation (under /v3/), as the README lists them. */
export const DEFAULT_ROUTES = [
  { path: '/', methods: ['GET'] },
  ...['/process/text', '/process/files/base64', '/process/text/reidentify', '/ner/text', '/analyze/text', '/bleep']
    .flatMap((path) => [{ path, methods: ['POST'] }, { path: `/v3${path}`, methods: ['POST'] }])
]

/** Asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1): never `none`, never HS*, whose key a JWKS would publish. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const
export type JwtAlgorithm = typeof JWT_ALGORITHMS[number]

// Authentication at the sidecar (README, "Authentication"). Absent: off, every request that passes
// the gate is forwarded as before. Every field is read per request, so the block reloads live.
export const AuthBlock = Type.Object({
  realm: Type.String({ pattern: '^[^"\\\\\\x00-\\x1f\\x7f]+$', default: 'pai-cors-sidecar', description: 'the realm of WWW-Authenticate (RFC 6750 §3): text without quotes, backslashes or control characters' }),
  forwardCredentials: Type.Boolean({ default: false, description: 'forward Authorization and x-api-key to the upstream (false: removed once verified)' }),
  jwt: Type.Optional(Type.Object({
    issuer: Type.String({ pattern: '^https?://', description: 'the issuer URL, exactly as the tokens\' iss claim' }),
    audiences: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'a token\'s aud must contain one of these' }),
    jwksUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'the JWKS URL; omitted: jwks_uri from {issuer}/.well-known/openid-configuration' })),
    algorithms: Type.Array(Type.Unsafe<JwtAlgorithm>({ type: 'string', enum: [...JWT_ALGORITHMS] }), { minItems: 1, default: ['RS256', 'ES256'], description: 'the JWS algorithms accepted (asymmetric only)' }),
    clockTolerance: duration('30s'),
    requiredClaims: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {}, description: 'claim: value a token must carry (a space-separated claim such as scope, or an array, must contain the value)' }),
    jwksCooldown: duration('30s'),
    jwksCacheMaxAge: duration('10m'),
    jwksTimeout: duration('5s')
  }, Strict)),
  apiKeys: Type.Optional(Type.Object({
    file: Type.String({ pattern: '^/', description: 'an absolute path (the file holds one SHA-256 hex digest per line, each with an optional label; reloaded on change)' })
  }, Strict))
}, Strict)
/** RFC 8446 (TLS 1.3) and TLS 1.2: nothing older is offered. */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const
export type TlsVersion = typeof TLS_VERSIONS[number]

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const ConfigSchema = Type.Object({
  server: Type.Object({
    host: host('0.0.0.0'),
    port: port(8000),
    // true = one proxy hop (the load balancer in front); a number = that many hops. Never "every hop":
    // a client could then write its own X-Forwarded-For and pick its rate-limit key.
    trustProxy: Type.Union([Type.Boolean(), Type.Integer({ minimum: 1, maximum: 10 })], { default: false, description: 'true, false, or how many proxies in front (1–10) to believe X-Forwarded-For/Proto/Host from' }),
    // Longer than the idle timeout of the load balancer in front (60 s on most clouds), so that the
    // balancer, not the sidecar, closes idle connections and never reuses one the sidecar just closed.
    keepAliveTimeout: duration('75s'),
    // Time to receive a request's headers (slow-loris on headers) → 408.
    headersTimeout: duration('10s'),
    // 1 KiB below the 16 KiB that the upstream (uvicorn/h11) accepts, leaving room for the
    // X-Forwarded-* and X-Request-Id headers the sidecar adds: a request the sidecar admits must
    // not be refused by the upstream with a bare 431.
    maxHeaderBytes: Type.Integer({ minimum: 1024, maximum: 1048576, default: 15360, description: 'total size of request headers → 431' }),
    // HTTPS, with HTTP/2 and HTTP/1.1 by ALPN, on the public port (README, "HTTPS and HTTP/2"). The
    // files are read at start and re-read when they change (a kubernetes.io/tls Secret's volume).
    tls: Type.Optional(Type.Object({
      certFile: Type.String({ minLength: 1, description: 'PEM certificate, the leaf first, then its chain' }),
      keyFile: Type.String({ minLength: 1, description: 'PEM private key of the certificate' }),
      minVersion: Type.Unsafe<TlsVersion>({ type: 'string', enum: [...TLS_VERSIONS], default: 'TLSv1.2', description: 'the oldest TLS version accepted' })
    }, { ...Strict, description: 'serve HTTPS (HTTP/2 and HTTP/1.1) on the public port; the admin port stays plain HTTP' }))
  }, { ...Strict, default: {} }),
  admin: Type.Object({
    host: host('0.0.0.0'),
    port: port(9090)
  }, { ...Strict, default: {} }),
  upstream: Type.Object({
    url: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:8080' }),
    healthPath: Type.String({ pattern: '^/', default: '/healthz' }),
    healthInterval: duration('5s'),
    healthTimeout: duration('2s'),
    connectTimeout: duration('5s'),
    headersTimeout: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'time for the upstream to start answering; default requestTimeout' })),
    requestTimeout: duration('300s'),
    // Below the upstream's own keep-alive (uvicorn: 5 s), so the pool never reuses a connection the
    // upstream is about to close.
    keepAliveTimeout: duration('4s'),
    maxConcurrent: Type.Integer({ minimum: 1, default: 32 }),
    queue: Type.Object({
      size: Type.Integer({ minimum: 0, default: 256 }),
      timeout: duration('30s')
    }, { ...Strict, default: {} })
  }, { ...Strict, default: {} }),
  routes: Type.Array(Route, { default: DEFAULT_ROUTES }),
  cors: CorsBlock,
  shadow: Type.Optional(Type.Object(CorsBlock.properties, { ...Strict, description: 'report-only candidate policy' })),
  limits: Type.Object({
    maxBodyBytes: Type.Integer({ minimum: 0, default: 52428800 }),
    bodyIdleTimeout: duration('30s'),
    maxHeaders: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'number of request header lines → 431' }),
    rateLimit: Type.Object({
      enabled: Type.Boolean({ default: false }),
      max: Type.Integer({ minimum: 1, default: 600, description: 'requests per client IP per window' }),
      window: duration('1m')
    }, { ...Strict, default: {} })
  }, { ...Strict, default: {} }),
  // WebSocket passthrough to the container's `/ws` (docs/ARCHITECTURE.md, "WebSockets"). Off by
  // default: browsers open WebSockets from any page without CORS, so the upgrade's Origin is checked
  // against the cors policy. Every field is read per upgrade, so all of them reload live; open
  // sockets keep their settings.
  websocket: Type.Object({
    enabled: Type.Boolean({ default: false }),
    path: Type.String({ pattern: '^/[^?#]*$', default: '/ws', description: 'the public path that accepts upgrades (exact, no query)' }),
    upstreamPath: Type.String({ pattern: '^/[^?#]*$', default: '/ws', description: 'the path on upstream.url that upgrades are forwarded to' }),
    allowMissingOrigin: Type.Boolean({ default: false, description: 'accept upgrades without Origin (non-browser clients); browsers always send one' }),
    // Whole messages are buffered (unlike HTTP bodies, which stream), so this is smaller than maxBodyBytes.
    maxMessageBytes: Type.Integer({ minimum: 1, maximum: 1073741824, default: 10485760, description: 'largest message in either direction → close 1009' }),
    idleTimeout: duration('60s'),
    maxConnections: Type.Integer({ minimum: 1, default: 100, description: 'open WebSockets at most → 503 websocket_limit' }),
    countsAsInFlight: Type.Boolean({ default: true, description: 'an open WebSocket holds one upstream.maxConcurrent slot' })
  }, { ...Strict, default: {} }),
  auth: Type.Optional(AuthBlock),
  shutdown: Type.Object({
    delay: duration('5s'),
    timeout: duration('30s')
  }, { ...Strict, default: {} }),
  log: Type.Object({
    level: Type.Unsafe<LogLevel>({ type: 'string', enum: [...LOG_LEVELS], default: 'info' })
  }, { ...Strict, default: {} })
}, Strict)

export type Config = Static<typeof ConfigSchema>

// cors/ owns the type of its input (CorsSettings) and imports nothing from config/, so that the pure
// CORS module needs neither TypeBox nor the schema (docs/ARCHITECTURE.md, "Module map"). The schema's
// cors block must deliver exactly that type: same fields, each assignable both ways. A field added on
// one side only fails `tsc` here.
type Mutual<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false
type Same<A, B> = Mutual<A, B> extends true ? Mutual<keyof A, keyof B> : false
type Assert<T extends true> = T
export type CorsBlockIsCorsSettings = Assert<Same<Static<typeof CorsBlock>, CorsSettings>>
