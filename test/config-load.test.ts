// Loading the configuration (docs/ARCHITECTURE.md, "Configuration"): one YAML file validated against one schema,
// defaults for every omitted field, every problem reported with its path in one result, overrides
// validated like the file, and one frozen snapshot swapped through the store.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseDuration } from '../sidecar/config/durations.ts'
import { compile, jsonPath, loadConfig, loadConfigText, validate, type Overrides, type Snapshot } from '../sidecar/config/load.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { matchRoute } from '../sidecar/routes.ts'

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/configs/${name}`, import.meta.url))
const CONTRACT = fixture('contract.yaml')

function load (text: string, overrides?: Overrides): Snapshot {
  const r = loadConfigText(text, 'test.yaml', overrides)
  if (!r.ok) throw new Error(`expected a valid configuration, got:\n${r.errors.join('\n')}`)
  return r.snapshot
}

function problems (text: string, overrides?: Overrides): string[] {
  const r = loadConfigText(text, 'test.yaml', overrides)
  if (r.ok) throw new Error('expected the configuration to be refused')
  return r.errors
}

/** `cors.allowedOrigins[2]: …`, `server.port: …`, or `(top level): …` */
const STARTS_WITH_PATH = /^(?:\(top level\)|[A-Za-z]+(?:\.[A-Za-z]+|\[[0-9]+\])*): /

/** Every field of the configuration contract (test/fixtures/configs/contract.yaml) at its documented value, routes aside (checked separately). */
const DEFAULTS = {
  server: { host: '0.0.0.0', port: 8000, trustProxy: false, keepAliveTimeout: '75s', headersTimeout: '10s', maxHeaderBytes: 15360 },
  admin: { host: '0.0.0.0', port: 9090 },
  upstream: {
    url: 'http://127.0.0.1:8080',
    healthPath: '/healthz',
    healthInterval: '5s',
    healthTimeout: '2s',
    connectTimeout: '5s',
    requestTimeout: '300s',
    keepAliveTimeout: '4s',
    maxConcurrent: 32,
    queue: { size: 256, timeout: '30s' }
  },
  cors: {
    allowedOrigins: [],
    allowedMethods: ['POST'],
    allowedHeaders: ['content-type', 'x-request-id'],
    exposedHeaders: ['x-request-id'],
    allowCredentials: false,
    allowPrivateNetwork: false,
    enforce: true
  },
  limits: { maxBodyBytes: 52428800, bodyIdleTimeout: '30s', maxHeaders: 100, rateLimit: { enabled: false, max: 600, window: '1m' } },
  websocket: { enabled: false, path: '/ws', upstreamPath: '/ws', allowMissingOrigin: false, maxMessageBytes: 10485760, idleTimeout: '60s', maxConnections: 100, countsAsInFlight: true },
  shutdown: { delay: '5s', timeout: '30s' },
  log: { level: 'info' }
}

const withoutRoutes = (snap: Snapshot): Record<string, unknown> => {
  const { routes: _routes, ...rest } = snap.config
  return rest
}

const routeAllows = (snap: Snapshot, path: string, method: string): boolean =>
  snap.config.routes.some((r) => r.path === path && r.methods.includes(method))

t.test('the configuration contract example loads with every value as written', async (t) => {
  const snap = load(readFileSync(CONTRACT, 'utf8'))
  t.strictSame(snap.config, {
    server: { ...DEFAULTS.server, host: '0.0.0.0', port: 8000, trustProxy: false },
    admin: { host: '0.0.0.0', port: 9090 },
    upstream: {
      url: 'http://127.0.0.1:8080',
      healthPath: '/healthz',
      healthInterval: '5s',
      healthTimeout: '2s',
      connectTimeout: '5s',
      requestTimeout: '300s',
      keepAliveTimeout: '4s',
      maxConcurrent: 32,
      queue: { size: 256, timeout: '30s' }
    },
    routes: [
      { path: '/process/text', methods: ['POST'] },
      { path: '/v3/process/text', methods: ['POST'] }
    ],
    cors: {
      allowedOrigins: ['https://app.example.com', 'https://*.example.com', 'http://localhost:*'],
      allowedMethods: ['POST'],
      allowedHeaders: ['content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id'],
      allowCredentials: false,
      maxAge: 600,
      allowPrivateNetwork: false,
      enforce: true
    },
    shadow: {
      allowedOrigins: ['https://new.example.com'],
      allowedMethods: ['POST'],
      allowedHeaders: ['content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id'],
      allowCredentials: false,
      allowPrivateNetwork: false,
      enforce: true
    },
    limits: { ...DEFAULTS.limits, maxBodyBytes: 52428800 },
    websocket: DEFAULTS.websocket,
    shutdown: { delay: '5s', timeout: '30s' },
    log: { level: 'info' }
  })
})

t.test('the snapshot carries the compiled cors, shadow and route table of its configuration', async (t) => {
  const snap = load(readFileSync(CONTRACT, 'utf8'))
  t.ok(snap.cors.exactOrigins.has('https://app.example.com'))
  t.equal(snap.cors.maxAgeValue, '600')
  t.ok(snap.shadow?.exactOrigins.has('https://new.example.com'), 'the shadow block is compiled too')
  t.same(matchRoute(snap.routes, '/v3/process/text', 'POST'), { kind: 'ok', route: '/v3/process/text' })
  t.equal(load('').shadow, undefined, 'no shadow block, no shadow policy')
})

t.test('an empty file gives the documented default for every field', async (t) => {
  const snap = load('')
  t.strictSame(withoutRoutes(snap), DEFAULTS)
  t.notOk('maxAge' in snap.config.cors, 'cors.maxAge has no default: omitted means the header is not sent')
  t.notOk('shadow' in snap.config, 'no shadow policy unless configured')
})

t.test('default routes forward the Private AI text endpoints and GET /', async (t) => {
  const snap = load('')
  t.ok(routeAllows(snap, '/process/text', 'POST'))
  t.ok(routeAllows(snap, '/v3/process/text', 'POST'))
  t.ok(routeAllows(snap, '/', 'GET'))
})

t.test('default routes do not reach the upstream /metrics, /diagnostics, /healthz or /process/files/uri', async (t) => {
  const snap = load('')
  for (const path of ['/metrics', '/diagnostics', '/healthz', '/process/files/uri', '/v3/process/files/uri']) {
    t.notOk(snap.config.routes.some((r) => r.path === path), `${path} is not listed`)
    for (const method of ['GET', 'POST']) {
      t.same(matchRoute(snap.routes, path, method), { kind: 'not_found' }, `${method} ${path} is not routed`)
    }
  }
})

t.test('a file that sets a few fields gets the defaults for all the others', async (t) => {
  const snap = load('server: { port: 8100 }\nupstream:\n  queue: { size: 10 }\ncors:\n  allowedOrigins: [https://app.example.com]\n')
  t.strictSame(withoutRoutes(snap), {
    ...DEFAULTS,
    server: { ...DEFAULTS.server, port: 8100 },
    upstream: { ...DEFAULTS.upstream, queue: { size: 10, timeout: '30s' } },
    cors: { ...DEFAULTS.cors, allowedOrigins: ['https://app.example.com'] }
  })
})

t.test('the websocket block: off by default, validated like the rest', async (t) => {
  const snap = load('websocket: { enabled: true, path: /stream, idleTimeout: 5m, maxMessageBytes: 1048576 }')
  t.match(snap.config.websocket, { enabled: true, path: '/stream', upstreamPath: '/ws', maxMessageBytes: 1048576 })
  t.equal(snap.ms.websocketIdleTimeout, 300000)
  t.match(problems('websocket: { path: ws, idleTimeout: 50ms, maxMessageBytes: 0, maxConnections: 0, allowMissingOrigin: yes }'), [
    /^websocket\.path: must be the public path that accepts upgrades/,
    /^websocket\.allowMissingOrigin: must be boolean/,
    /^websocket\.maxMessageBytes: must be >= 1/,
    /^websocket\.maxConnections: must be >= 1/
  ])
  t.match(problems('websocket: { idleTimeout: 50ms }'), ['websocket.idleTimeout: "50ms" is too short; at least 100ms'])
  t.match(problems('websocket: { upstreamPath: "/ws?x=1" }')[0], /^websocket\.upstreamPath: must be the path on upstream\.url/)
})

t.test('a file that lists routes replaces the default routes', async (t) => {
  const snap = load('routes: [{ path: /process/text, methods: [POST] }]')
  t.strictSame(snap.config.routes, [{ path: '/process/text', methods: ['POST'] }])
  t.same(matchRoute(snap.routes, '/', 'GET'), { kind: 'not_found' })
})

t.test('a file that is empty, only comments, only a document marker or a YAML null means the defaults', async (t) => {
  const defaults = load('')
  for (const text of ['\n\n', '# nothing configured yet\n', '---\n', '~\n', 'null\n']) {
    const snap = load(text)
    t.strictSame(snap.config, defaults.config, JSON.stringify(text))
    t.equal(snap.hash, defaults.hash, JSON.stringify(text))
  }
})

t.test('durations are converted to milliseconds', async (t) => {
  t.strictSame(load(readFileSync(CONTRACT, 'utf8')).ms, {
    keepAliveTimeout: 75000, headersTimeout: 10000, connectTimeout: 5000, upstreamHeadersTimeout: 300000, requestTimeout: 300000, upstreamKeepAliveTimeout: 4000, healthInterval: 5000, healthTimeout: 2000, queueTimeout: 30000, bodyIdleTimeout: 30000, rateLimitWindow: 60000, websocketIdleTimeout: 60000, shutdownDelay: 5000, shutdownTimeout: 30000
  })
  t.strictSame(load('upstream: { connectTimeout: 250ms, requestTimeout: 5m, queue: { timeout: 0s } }\nshutdown: { delay: 1h, timeout: 1500ms }').ms, {
    keepAliveTimeout: 75000, headersTimeout: 10000, connectTimeout: 250, upstreamHeadersTimeout: 300000, requestTimeout: 300000, upstreamKeepAliveTimeout: 4000, healthInterval: 5000, healthTimeout: 2000, queueTimeout: 0, bodyIdleTimeout: 30000, rateLimitWindow: 60000, websocketIdleTimeout: 60000, shutdownDelay: 3600000, shutdownTimeout: 1500
  })
})

t.test('parseDuration reads each unit and refuses a value without one', async (t) => {
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('30s'), 30000)
  t.equal(parseDuration('5m'), 300000)
  t.equal(parseDuration('1h'), 3600000)
  for (const bad of ['30', '1d', '', '5 s', '-1s', '1.5s']) t.throws(() => parseDuration(bad), /not a duration/, JSON.stringify(bad))
})

t.test('jsonPath turns a JSON pointer into the dotted path used in messages', async (t) => {
  t.equal(jsonPath('/cors/allowedOrigins/2'), 'cors.allowedOrigins[2]')
  t.equal(jsonPath('/routes/0/methods/1'), 'routes[0].methods[1]')
  t.equal(jsonPath('/upstream/queue/size'), 'upstream.queue.size')
  t.equal(jsonPath(''), '')
  t.equal(jsonPath('/a~1b/c~0d'), 'a/b.c~d', 'JSON pointer escapes are decoded')
})

t.test('the snapshot and its configuration are frozen: mutation throws', async (t) => {
  const snap = load(readFileSync(CONTRACT, 'utf8'))
  t.ok(Object.isFrozen(snap))
  t.throws(() => { (snap as { hash: string }).hash = 'x' }, TypeError)
  t.throws(() => { (snap as { config: unknown }).config = {} }, TypeError)
  t.throws(() => { snap.config.server.port = 1 }, TypeError)
  t.throws(() => { snap.config.upstream.queue.size = 1 }, TypeError)
  t.throws(() => { snap.config.cors.allowedOrigins.push('https://evil.example') }, TypeError)
  t.throws(() => { snap.config.cors.allowedOrigins[0] = '*' }, TypeError)
  t.throws(() => { (snap.config.routes[0] as { methods: string[] }).methods.push('DELETE') }, TypeError)
  t.throws(() => { (snap.config.shadow as { allowCredentials: boolean }).allowCredentials = true }, TypeError)
  t.throws(() => { (snap.ms as { requestTimeout: number }).requestTimeout = 1 }, TypeError)
  t.throws(() => { (snap.cors as { anyOrigin: boolean }).anyOrigin = true }, TypeError)
  t.throws(() => { (snap.routes as { prefixes: unknown }).prefixes = [] }, TypeError)
  t.equal(snap.config.cors.allowedOrigins.length, 3, 'nothing changed')
})

t.test('the hash is 12 hex digits and the same for the same content', async (t) => {
  const text = readFileSync(CONTRACT, 'utf8')
  const a = load(text)
  t.match(a.hash, /^[0-9a-f]{12}$/)
  t.equal(load(text).hash, a.hash, 'same text')
  const b = loadConfigText(text, 'elsewhere.yaml')
  t.equal(b.ok && b.snapshot.hash, a.hash, 'the source name is not part of the content')
  t.equal(
    load('# comment\nserver:\n  port: 8100   # trailing comment\n').hash,
    load('server: { port: 8100 }').hash,
    'comments and block/flow style are not content'
  )
})

t.test('the hash differs for different content', async (t) => {
  const base = load('server: { port: 8100 }').hash
  t.not(load('server: { port: 8101 }').hash, base)
  t.not(load('cors: { allowedOrigins: [https://app.example.com] }').hash, load('cors: { allowedOrigins: [https://app2.example.com] }').hash)
  t.not(load('log: { level: debug }').hash, load('').hash)
})

t.test('invalid files report every problem in one result, each starting with its path', async (t) => {
  const errors = problems([
    'server: { port: "8000", trustProxy: "yes" }',
    'upstream: { connectTimeout: 30, queue: { size: -1 } }',
    'cors: { allowedOrigin: [https://app.example.com], maxAge: 86401 }',
    'log: { level: verbose }'
  ].join('\n'))
  for (const e of errors) t.match(e, STARTS_WITH_PATH, e)
  const paths = errors.map((e) => e.slice(0, e.indexOf(':'))).sort()
  t.strictSame(paths, [
    'cors.allowedOrigin', 'cors.maxAge', 'log.level', 'server.port', 'server.trustProxy', 'upstream.connectTimeout', 'upstream.queue.size'
  ])
})

t.test('an unknown field is reported with a "did you mean" hint for a near miss', async (t) => {
  const [e, ...rest] = problems('cors:\n  allowedOrigin: [https://app.example.com]\n')
  t.equal(rest.length, 0)
  t.match(e, /^cors\.allowedOrigin: unknown field \(did you mean "allowedOrigins"\?\)/)
  t.match(e, /known fields: allowedOrigins, allowedMethods, allowedHeaders, exposedHeaders, allowCredentials, maxAge, allowPrivateNetwork, enforce$/)
})

t.test('an unknown field that differs only in case, or is longer than a known one, gets a hint', async (t) => {
  t.match(problems('cors: { maxage: 600 }')[0], /^cors\.maxage: unknown field \(did you mean "maxAge"\?\)/)
  t.match(problems('log: { levels: debug }')[0], /^log\.levels: unknown field \(did you mean "level"\?\)/)
  t.match(problems('serverr: { port: 1 }')[0], /^serverr: unknown field \(did you mean "server"\?\)/)
})

t.test('an unknown field a few typing slips from a known one gets the nearest name as its hint', async (t) => {
  t.match(problems('upstream: { maxConcurent: 8 }')[0], /^upstream\.maxConcurent: unknown field \(did you mean "maxConcurrent"\?\)/)
  t.match(problems('upstream: { requestTiemout: 8s }')[0], /^upstream\.requestTiemout: unknown field \(did you mean "requestTimeout"\?\)/, 'two letters swapped')
  t.match(problems('cors: { alowedHeaders: [x-a] }')[0], /^cors\.alowedHeaders: unknown field \(did you mean "allowedHeaders"\?\)/)
  t.match(problems('limits: { maxBodyBites: 1 }')[0], /did you mean "maxBodyBytes"/)
  t.notMatch(problems('upstream: { urx: 1 }')[0], /did you mean/, 'a short name is not guessed at: one slip in three letters is another word')
})

t.test('an unknown field with no near miss lists the known fields without a hint', async (t) => {
  const [e] = problems('upstream: { retries: 3 }')
  t.match(e, /^upstream\.retries: unknown field; known fields: url, healthPath, healthInterval, healthTimeout, connectTimeout, headersTimeout, requestTimeout, keepAliveTimeout, maxConcurrent, queue$/)
  t.match(problems('metrics: { port: 9100 }')[0], /^metrics: unknown field; known fields: server, admin, upstream, routes, cors, shadow, limits, websocket, auth, shutdown, log$/)
})

t.test('an empty key at the top level is reported as (top level)', async (t) => {
  const [e] = problems('"": 1\n')
  t.match(e, /^\(top level\): unknown field/)
})

t.test('wrong types are reported with their path and the expected type', async (t) => {
  const errors = problems([
    'server: { port: eighty, trustProxy: "yes" }',
    'routes: { path: /process/text }',
    'cors: { allowedOrigins: https://app.example.com, enforce: 1 }'
  ].join('\n'))
  t.strictSame(errors.sort(), [
    'cors.allowedOrigins: must be array (exact origins, https://*.example.com (subdomains), http://localhost:* (any port), or *)',
    'cors.enforce: must be boolean (refuse disallowed cross-origin requests with 403 (false: forward them without CORS headers))',
    'routes: must be array',
    'server.port: must be integer',
    'server.trustProxy: must be true, false, or how many proxies in front (1–10) to believe X-Forwarded-For/Proto/Host from'
  ])
})

t.test('a duration without a unit is refused, whether YAML reads it as a number or a string', async (t) => {
  const errors = problems('upstream: { connectTimeout: 30, requestTimeout: "30", queue: { timeout: 1d } }\nshutdown: { delay: 5 s }')
  t.equal(errors.length, 4)
  for (const path of ['upstream.connectTimeout', 'upstream.requestTimeout', 'upstream.queue.timeout', 'shutdown.delay']) {
    const e = errors.find((x) => x.startsWith(`${path}: `))
    t.match(e, /a duration with a unit: 250ms, 30s, 5m, 1h/, path)
  }
})

t.test('cors.maxAge above 86400 seconds is refused; 86400 is accepted', async (t) => {
  t.strictSame(problems('cors: { maxAge: 86401 }'), ['cors.maxAge: must be <= 86400'])
  t.strictSame(problems('cors: { maxAge: -1 }'), ['cors.maxAge: must be >= 0'])
  t.equal(load('cors: { maxAge: 86400 }').config.cors.maxAge, 86400)
})

t.test('a log level outside the list is refused and the message lists the levels', async (t) => {
  t.strictSame(problems('log: { level: verbose }'), ['log.level: must be one of fatal, error, warn, info, debug, trace, silent'])
  t.equal(load('log: { level: debug }').config.log.level, 'debug')
})

t.test('numbers out of range are refused with their path', async (t) => {
  const errors = problems('server: { port: 70000 }\nadmin: { port: -1 }\nupstream: { maxConcurrent: 0 }\nlimits: { maxBodyBytes: 1.5 }')
  t.strictSame(errors.sort(), [
    'admin.port: must be >= 0',
    'limits.maxBodyBytes: must be integer',
    'server.port: must be <= 65535',
    'upstream.maxConcurrent: must be >= 1'
  ])
})

t.test('an upstream.url that is not http or https is refused', async (t) => {
  t.strictSame(problems('upstream: { url: "127.0.0.1:8080" }'), ['upstream.url: must match pattern "^https?://"'])
})

t.test('route entries are checked: leading slash, at least one method, method tokens, required path', async (t) => {
  const errors = problems('routes:\n  - { path: process/text, methods: [POST] }\n  - { path: /a, methods: [] }\n  - { path: /b, methods: ["PO ST"] }\n  - { methods: [GET] }\n')
  t.equal(errors.length, 4)
  t.match(errors.find((e) => e.startsWith('routes[0].path: ')), /exact path, or a prefix when it ends in "\/"/)
  t.ok(errors.some((e) => e.startsWith('routes[1].methods: ')))
  t.ok(errors.some((e) => e.startsWith('routes[2].methods[0]: ')))
  t.ok(errors.some((e) => e.startsWith('routes[3]: ') && e.includes('path')))
})

t.test('an unquoted YAML null in allowedOrigins is reported with a hint to quote it', async (t) => {
  for (const text of ['cors: { allowedOrigins: [null] }', 'cors:\n  allowedOrigins:\n    - ~\n', 'cors:\n  allowedOrigins:\n    - https://app.example.com\n    -\n']) {
    const [e, ...rest] = problems(text)
    t.equal(rest.length, 0, text)
    t.match(e, /^cors\.allowedOrigins\[[01]\]: must be string \(YAML read null here: quote the value\)/, text)
  }
})

t.test('an empty block is refused, not silently replaced by its defaults', async (t) => {
  const [e] = problems('server:\n')
  t.match(e, /^server: must be object/)
})

t.test('a YAML syntax error is reported with the file name and its line', async (t) => {
  const errors = problems('cors:\n  allowedOrigins: [https://app.example.com\nlog: { level: info }\n')
  t.ok(errors.length >= 1)
  for (const e of errors) t.match(e, /^test\.yaml: YAML .* at line \d+, column \d+/)
})

t.test('duplicate YAML keys are refused with their line', async (t) => {
  t.match(problems('server:\n  port: 8000\n  port: 8001\n'), [/^test\.yaml: YAML Map keys must be unique at line 3, column 3/])
  t.match(problems('cors: {}\ncors: {}\n'), [/^test\.yaml: YAML Map keys must be unique at line 2/])
})

t.test('every YAML error of a file is reported, not only the first', async (t) => {
  const errors = problems('server:\n  port: 1\n  port: 2\nadmin:\n  port: 3\n  port: 4\n')
  t.equal(errors.length, 2)
  t.match(errors[0], /line 3/)
  t.match(errors[1], /line 6/)
})

t.test('a top-level list is refused', async (t) => {
  t.strictSame(problems('- server: { port: 8000 }\n'), ['test.yaml: the file must be a YAML mapping (server:, upstream:, cors: …)'])
})

t.test('a top-level scalar is refused', async (t) => {
  for (const text of ['8000\n', 'hello\n', 'true\n']) {
    t.strictSame(problems(text), ['test.yaml: the file must be a YAML mapping (server:, upstream:, cors: …)'], text)
  }
})

t.test('a schema error and a security problem in the same file are reported together', async (t) => {
  const r = loadConfigText('cors: { allowedOrigins: ["*"], allowCredentials: true, maxAge: 90000 }', 'test.yaml')
  t.equal(r.ok, false)
  const errors = r.ok ? [] : r.errors
  t.ok(errors.some((e) => e.startsWith('cors.maxAge: ')), 'the schema error')
  t.ok(errors.some((e) => e.startsWith('cors.allowedOrigins[0]: ')), 'the security problem')
})

// Overrides (CLI flags / environment for local use) win over the file and are validated like the file.

const FILE = [
  'server: { host: 0.0.0.0, port: 8000 }',
  'admin: { port: 9090 }',
  'upstream: { url: "http://127.0.0.1:8080" }',
  'cors: { allowedOrigins: [https://app.example.com, https://other.example.com] }',
  'log: { level: info }'
].join('\n')

t.test('each override wins over the file', async (t) => {
  const c = load(FILE, {
    upstream: 'http://127.0.0.1:18080',
    allowOrigins: ['http://localhost:5173'],
    host: '127.0.0.1',
    port: 8100,
    adminPort: 9100,
    logLevel: 'debug'
  }).config
  t.equal(c.upstream.url, 'http://127.0.0.1:18080')
  t.strictSame(c.cors.allowedOrigins, ['http://localhost:5173'], 'the override list replaces the file list')
  t.equal(c.server.host, '127.0.0.1')
  t.equal(c.server.port, 8100)
  t.equal(c.admin.port, 9100)
  t.equal(c.log.level, 'debug')
})

t.test('overrides only change what they name; the rest of the file and the defaults stay', async (t) => {
  const c = load('server: { port: 8000, trustProxy: true }\nupstream: { maxConcurrent: 4 }', { port: 8100, upstream: 'http://127.0.0.1:18080' }).config
  t.equal(c.server.trustProxy, true)
  t.equal(c.server.host, '0.0.0.0')
  t.equal(c.upstream.maxConcurrent, 4)
  t.equal(c.upstream.connectTimeout, '5s')
})

t.test('overrides apply when the file has none of their blocks', async (t) => {
  const c = load('', { upstream: 'http://127.0.0.1:18080', allowOrigins: ['https://app.example.com'], host: '::1', port: 0, adminPort: 0, logLevel: 'warn' }).config
  t.equal(c.upstream.url, 'http://127.0.0.1:18080')
  t.strictSame(c.cors.allowedOrigins, ['https://app.example.com'])
  t.equal(c.server.host, '::1')
  t.equal(c.server.port, 0)
  t.equal(c.admin.port, 0)
  t.equal(c.log.level, 'warn')
})

t.test('overrides left undefined change nothing', async (t) => {
  const plain = load(FILE)
  const c = load(FILE, { upstream: undefined, allowOrigins: undefined, host: undefined, port: undefined, adminPort: undefined, logLevel: undefined })
  t.strictSame(c.config, plain.config)
  t.equal(c.hash, plain.hash)
})

t.test('an invalid override origin is reported like one in the file', async (t) => {
  const [e, ...rest] = problems(FILE, { allowOrigins: ['https://app.example.com', 'https://app.example.com/'] })
  t.equal(rest.length, 0)
  t.match(e, /^cors\.allowedOrigins\[1\]: "https:\/\/app\.example\.com\/" ends with "\/"/)
})

t.test('invalid override values are validated like the file', async (t) => {
  t.strictSame(problems(FILE, { port: 70000, adminPort: -1, host: '', logLevel: 'loud' }).sort(), [
    'admin.port: must be >= 0',
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent',
    'server.host: must NOT have fewer than 1 characters',
    'server.port: must be <= 65535'
  ])
  t.match(problems(FILE, { upstream: 'http://127.0.0.1:8080/v1' }), [/^upstream\.url: "http:\/\/127\.0\.0\.1:8080\/v1" must be scheme:\/\/host:port only/])
  t.match(problems(FILE, { upstream: 'localhost:8080' }), [/^upstream\.url: /])
})

t.test('an override does not hide a wrong type in the file', async (t) => {
  const r = loadConfigText('server: [1, 2]\n', 'test.yaml', { port: 9000 })
  t.equal(r.ok, false)
  t.match(r.ok ? [] : r.errors, [/^server: must be object/])
})

// loadConfig: the file on disk.

t.test('loadConfig reads a real file and names it as the source', async (t) => {
  const path = fixture('minimal.yaml')
  const r = await loadConfig(path)
  if (!r.ok) throw new Error(r.errors.join('\n'))
  t.equal(r.snapshot.source, path)
  t.equal(r.snapshot.config.upstream.url, 'http://127.0.0.1:8081')
  t.strictSame(r.snapshot.config.cors.allowedOrigins, ['https://app.example.com'])
  t.equal(r.snapshot.config.log.level, 'warn')
  t.equal(r.snapshot.config.server.port, 8000, 'defaults for the rest')
})

t.test('loadConfig on the contract file gives the same snapshot as its text', async (t) => {
  const r = await loadConfig(CONTRACT)
  t.equal(r.ok && r.snapshot.hash, load(readFileSync(CONTRACT, 'utf8')).hash)
})

t.test('loadConfig applies overrides over a real file', async (t) => {
  const r = await loadConfig(fixture('minimal.yaml'), { logLevel: 'error', port: 8200 })
  t.equal(r.ok && r.snapshot.config.log.level, 'error')
  t.equal(r.ok && r.snapshot.config.server.port, 8200)
})

t.test('loadConfig reports every problem of an invalid real file', async (t) => {
  const r = await loadConfig(fixture('invalid.yaml'))
  t.equal(r.ok, false)
  const errors = r.ok ? [] : r.errors
  t.equal(errors.length, 3)
  t.ok(errors.some((e) => e.startsWith('server.port: ')))
  t.ok(errors.some((e) => e.startsWith('cors.allowedOrigin: unknown field (did you mean "allowedOrigins"?)')))
  t.ok(errors.some((e) => e.startsWith('log.level: ')))
})

t.test('loadConfig on a missing file gives one clear error naming the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'missing.yaml')
  const r = await loadConfig(path)
  t.strictSame(r, { ok: false, errors: [`${path}: cannot read the file (ENOENT)`] })
})

t.test('loadConfig on a directory gives one clear error naming the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const r = await loadConfig(dir)
  t.strictSame(r, { ok: false, errors: [`${dir}: cannot read the file (EISDIR)`] })
})

t.test('loadConfig(undefined) uses the defaults, with overrides applied', async (t) => {
  const r = await loadConfig(undefined)
  if (!r.ok) throw new Error(r.errors.join('\n'))
  t.equal(r.snapshot.source, 'defaults')
  t.strictSame(r.snapshot.config, load('').config)
  const o = await loadConfig(undefined, { allowOrigins: ['http://localhost:3000'], port: 8100 })
  t.strictSame(o.ok && o.snapshot.config.cors.allowedOrigins, ['http://localhost:3000'])
  t.equal(o.ok && o.snapshot.config.server.port, 8100)
})

// ConfigStore: one immutable snapshot at a time.

t.test('ConfigStore.current() returns the snapshot it was created with, at generation 1', async (t) => {
  const first = load('')
  const store = new ConfigStore(first)
  t.equal(store.current(), first)
  t.equal(store.generation, 1)
})

t.test('ConfigStore.replace() swaps the snapshot and bumps the generation by one', async (t) => {
  const first = load('')
  const second = load('log: { level: debug }')
  const third = load('log: { level: warn }')
  const store = new ConfigStore(first)
  const inFlight = store.current()
  store.replace(second)
  t.equal(store.current(), second)
  t.equal(store.generation, 2)
  t.equal(inFlight, first, 'a request holding the old snapshot keeps it')
  t.equal(inFlight.config.log.level, 'info')
  store.replace(third)
  t.equal(store.current(), third)
  t.equal(store.generation, 3)
})

t.test('durations that bound live work have a floor, and none may overflow a timer', async (t) => {
  t.same(problems('upstream: { requestTimeout: 0s, healthInterval: 5ms }\nlimits: { bodyIdleTimeout: 0ms }'), [
    'upstream.healthInterval: "5ms" is too short; at least 10ms',
    'upstream.requestTimeout: "0s" is too short; at least 100ms',
    'limits.bodyIdleTimeout: "0ms" is too short; at least 100ms'
  ])
  t.same(problems('shutdown: { timeout: 600h }'), ['shutdown.timeout: "600h" is too long; at most 596h'])
  t.equal(load('upstream: { queue: { timeout: 0s } }\nshutdown: { delay: 0s }').ms.queueTimeout, 0, 'zero is meaningful for a queue wait or a delay')
})

t.test('duration bounds are reported together with every other problem, not only once the rest is fixed', async (t) => {
  const errors = problems('server: { port: eighty }\ncors: { allowedOrigins: ["https://*.com"] }\nupstream: { requestTimeout: 0s, healthInterval: 5 }\nshutdown: { timeout: 600h }')
  t.same(errors.filter((e) => / is too (short|long);/.test(e)), [
    'upstream.requestTimeout: "0s" is too short; at least 100ms',
    'shutdown.timeout: "600h" is too long; at most 596h'
  ], 'the bounds, even though the schema and the rules failed too')
  t.ok(errors.some((e) => e.startsWith('server.port: ')), 'the schema error')
  t.ok(errors.some((e) => e.startsWith('upstream.healthInterval: ') && !e.includes('too short')), 'a duration without a unit is the schema\'s to name, once')
  t.ok(errors.some((e) => e.startsWith('cors.allowedOrigins[0]: ') && e.includes('public suffix')), 'the security rule')
  // A block of the wrong shape has no durations to check; the schema names it.
  t.same(problems('upstream: [1, 2]\nlimits: { bodyIdleTimeout: 0ms }').filter((e) => e.includes('too short')), ['limits.bodyIdleTimeout: "0ms" is too short; at least 100ms'])
})

t.test('validate gives a frozen Config with every default; compile turns it into the same snapshot as loadConfigText', async (t) => {
  const text = 'cors: { allowedOrigins: [https://a.example.com] }\nupstream: { requestTimeout: 2s }\n'
  const validated = validate(text, 'test.yaml', { port: 8100 })
  if (!validated.ok) throw new Error(validated.errors.join('\n'))
  t.ok(Object.isFrozen(validated.config) && Object.isFrozen(validated.config.cors.allowedOrigins), 'frozen all the way down')
  t.equal(validated.config.server.port, 8100, 'overrides applied')
  t.equal(validated.config.upstream.requestTimeout, '2s')
  const compiled = compile(validated.config, 'test.yaml')
  const loaded = load(text, { port: 8100 })
  t.equal(compiled.hash, loaded.hash)
  t.same(compiled.ms, loaded.ms)
  t.equal(compiled.ms.upstreamHeadersTimeout, 2000, 'upstream.headersTimeout defaults to upstream.requestTimeout')
  t.equal(compiled.source, 'test.yaml')
  t.ok(Object.isFrozen(compiled))
  t.match(validate('a: [', 'test.yaml'), { ok: false, errors: [/^test\.yaml: YAML /] })
})
