// The gate (sidecar/http/gate.ts), as a table of the checks a browser request meets, in order. Each
// row: the request, then what the sidecar does with it. The same function answers live HTTP
// requests, WebSocket upgrades and `explain`.
import t from 'tap'
import { gate, gateUpgrade, type RequestFacts } from '../sidecar/http/gate.ts'
import { snapshot } from './fixtures/sidecar.ts'

const APP = 'https://app.example.com'
const SELF = 'https://api.example.com'
const snap = snapshot(`
cors: { allowedOrigins: [${APP}], allowedHeaders: [content-type], maxAge: 60 }
shadow: { allowedOrigins: [https://next.example.com] }
routes: [{ path: /process/text, methods: [POST] }, { path: /files/, methods: [GET, POST] }]
limits: { maxHeaders: 20, maxBodyBytes: 1000 }
websocket: { enabled: true }
`)
const open = snapshot(`cors: { allowedOrigins: [${APP}], enforce: false }\nroutes: [{ path: /process/text, methods: [POST] }]`)

const request = (f: Partial<RequestFacts>): RequestFacts => ({
  method: 'POST', url: '/process/text', httpVersion: '1.1', host: 'api.example.com', origin: APP, selfOrigin: SELF, headerCount: 5, ...f
})

type Row = [string, Partial<RequestFacts>, { kind: string; code?: string; route?: string; cors?: string; headers?: Record<string, string> }]
const rows: Row[] = [
  ['an HTTP/1.1 request without Host', { host: undefined }, { kind: 'refuse', code: 'bad_request' }],
  ['an HTTP/1.0 request without Host', { host: undefined, httpVersion: '1.0' }, { kind: 'pass', route: '/process/text' }],
  ['an allowed preflight, on any path', { method: 'OPTIONS', url: '/anything', requestMethod: 'POST', requestHeaders: 'content-type' },
    { kind: 'preflight', cors: 'allowed', headers: { 'access-control-allow-origin': APP, 'access-control-allow-headers': 'content-type', 'access-control-max-age': '60' } }],
  ['a preflight asking for a header not allowed', { method: 'OPTIONS', requestMethod: 'POST', requestHeaders: 'x-secret' }, { kind: 'refuse', code: 'cors_preflight_denied', cors: 'denied' }],
  ['a preflight from an origin not allowed', { method: 'OPTIONS', origin: 'https://evil.example', requestMethod: 'POST' }, { kind: 'refuse', code: 'cors_preflight_denied' }],
  ['OPTIONS without Access-Control-Request-Method is no preflight', { method: 'OPTIONS' }, { kind: 'refuse', code: 'method_not_allowed' }],
  ['too many header lines', { headerCount: 21 }, { kind: 'refuse', code: 'headers_too_large', headers: { 'access-control-allow-origin': APP } }],
  ['a dot segment', { url: '/files/../metrics' }, { kind: 'refuse', code: 'bad_path' }],
  ['an unknown path', { url: '/metrics' }, { kind: 'refuse', code: 'not_found', headers: { 'access-control-allow-origin': APP, vary: 'Origin' } }],
  ['a method the route does not take', { method: 'PUT' }, { kind: 'refuse', code: 'method_not_allowed', route: '/process/text', headers: { allow: 'POST' } }],
  ['an origin not allowed', { origin: 'https://evil.example' }, { kind: 'refuse', code: 'cors_origin_denied', route: '/process/text', cors: 'denied' }],
  ['a look-alike origin', { origin: 'https://app.example.com.evil.example' }, { kind: 'refuse', code: 'cors_origin_denied' }],
  ['the null origin', { origin: 'null' }, { kind: 'refuse', code: 'cors_origin_denied' }],
  ['a same-origin request', { origin: SELF }, { kind: 'pass', cors: 'same_origin' }],
  ['a request without Origin (not CORS)', { origin: undefined }, { kind: 'pass', cors: 'none' }],
  ['a declared body over maxBodyBytes', { contentLength: '1001' }, { kind: 'refuse', code: 'payload_too_large', headers: { connection: 'close', 'access-control-allow-origin': APP } }],
  ['a declared body at maxBodyBytes', { contentLength: '1000' }, { kind: 'pass' }],
  ['an allowed request under a prefix route', { url: '/files/a.txt?x=1', method: 'GET' }, { kind: 'pass', route: '/files/', cors: 'allowed', headers: { 'access-control-allow-origin': APP } }]
]

t.test('HTTP: each check in turn', async (t) => {
  for (const [what, facts, { cors, ...want }] of rows) {
    t.match(gate(snap, request(facts)), cors === undefined ? want : { ...want, cors: { outcome: cors } }, what)
  }
})

t.test('the first failed check decides: Host before CORS, CORS before the route, the route before enforcement', async (t) => {
  t.match(gate(snap, request({ host: undefined, origin: 'https://evil.example' })), { code: 'bad_request' })
  t.match(gate(snap, request({ headerCount: 99, url: '/metrics' })), { code: 'headers_too_large' })
  t.match(gate(snap, request({ origin: 'https://evil.example', url: '/metrics' })), { code: 'not_found' }, 'an unknown path is a 404 whatever the origin')
  t.match(gate(snap, request({ origin: 'https://evil.example', contentLength: '5000' })), { code: 'cors_origin_denied' })
})

t.test('cors.enforce: false forwards a denied origin, without CORS headers', async (t) => {
  const v = gate(open, request({ origin: 'https://evil.example' }))
  t.match(v, { kind: 'pass', cors: { outcome: 'denied' } })
  t.same(v.headers, { vary: 'Origin' })
})

t.test('the shadow policy is decided alongside, never applied', async (t) => {
  t.match(gate(snap, request({})), { kind: 'pass', cors: { outcome: 'allowed' }, shadow: { outcome: 'denied' } })
  t.match(gate(snap, request({ origin: undefined })), { shadow: undefined }, 'no Origin: nothing to compare')
  t.match(gate(snap, request({ method: 'OPTIONS', requestMethod: 'POST' })), { kind: 'preflight', shadow: { outcome: 'denied', preflight: true } })
})

t.test('explain asks about any path: no route check', async (t) => {
  t.match(gate(snap, request({ url: undefined })), { kind: 'pass', route: undefined })
})

t.test('WebSocket upgrades: Host, header count, CORS; a denied origin is refused even with enforce: false', async (t) => {
  const up = (f: Partial<RequestFacts>, s = snap) => gateUpgrade(s, request({ method: 'GET', url: '/ws', ...f }))
  t.match(up({}), { kind: 'pass', route: '/ws', cors: { outcome: 'allowed' } })
  t.match(up({ host: undefined, httpVersion: '1.0' }), { kind: 'refuse', code: 'bad_request' }, 'Host is required whatever the version')
  t.match(up({ headerCount: 21 }), { code: 'headers_too_large' })
  t.match(up({ origin: 'https://evil.example' }), { code: 'cors_origin_denied' })
  t.match(up({ origin: 'https://evil.example' }, open), { code: 'cors_origin_denied' })
  t.match(up({ origin: undefined }), { code: 'origin_required' })
  t.match(up({ origin: undefined }, snapshot('websocket: { enabled: true, allowMissingOrigin: true }')), { kind: 'pass', cors: { outcome: 'none' } })
  t.match(up({ origin: SELF }), { kind: 'pass', cors: { outcome: 'same_origin' } })
})

t.test('a public policy ("*" without credentials) answers without Vary: the answer is the same for every origin', async (t) => {
  const pub = snapshot('cors: { allowedOrigins: ["*"] }\nroutes: [{ path: /process/text, methods: [POST] }]')
  const v = gate(pub, request({ origin: undefined }))
  t.match(v, { kind: 'pass', cors: { outcome: 'none' } })
  t.same(v.headers, { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'x-request-id' })
})
