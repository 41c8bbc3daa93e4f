// The request path through a real sidecar in front of a real upstream, both on 127.0.0.1:0.
import t from 'tap'
import { request } from 'node:http'
import { receivedWith, startUpstream, type Upstream } from './fixtures/upstream.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'

const APP = 'https://app.example.com'
const CONFIG = `
cors:
  allowedOrigins: [${APP}, "https://*.example.com"]
  allowedMethods: [POST, PUT]
  allowedHeaders: [content-type, x-request-id]
  exposedHeaders: [x-request-id]
  maxAge: 600
routes:
  - { path: /process/text, methods: [POST] }
  - { path: /leaky, methods: [GET] }
  - { path: /reset, methods: [POST] }
  - { path: /files/, methods: [GET, POST] }
  - { path: /vary-star, methods: [GET] }
  - { path: /unavailable, methods: [GET] }
`

let up: Upstream
let sc: TestSidecar
t.before(async () => {
  up = await startUpstream()
  sc = await startSidecar(CONFIG, up.url)
})
t.teardown(async () => { await sc.close(); await up.close() })

const json = { 'content-type': 'application/json' }

/** A raw request, for header shapes fetch() will not send (repeated headers, odd spacing). */
function rawRequest (path: string, method: string, headers: [string, string][], body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(sc.url)
    // Raw header arrays get no defaults from Node, so Host is added here.
    const raw = [['Host', url.host], ...headers].flat()
    const req = request({ host: url.hostname, port: url.port, path, method, headers: raw as unknown as Record<string, string> }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

t.test('an allowed JSON POST is forwarded with its body and answered with the CORS headers', async (t) => {
  const before = up.received.length
  const res = await fetch(`${sc.url}/process/text?q=1`, { method: 'POST', headers: { ...json, origin: APP }, body: '{"text":["hi"]}' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal(res.headers.get('access-control-expose-headers'), 'x-request-id')
  t.equal(res.headers.get('access-control-allow-credentials'), null)
  t.equal(res.headers.get('vary'), 'Origin')
  t.same(await res.json(), { method: 'POST', url: '/process/text?q=1', bytes: 15 })
  t.equal(up.received.length, before + 1)
})

t.test('preflights are answered by the sidecar and never forwarded', async (t) => {
  const before = up.received.length
  const ok = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: 'https://a.b.example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'Content-Type' } })
  t.equal(ok.status, 204)
  t.equal(ok.headers.get('content-length'), '0')
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://a.b.example.com')
  t.equal(ok.headers.get('access-control-allow-methods'), 'POST, PUT')
  t.equal(ok.headers.get('access-control-allow-headers'), 'content-type, x-request-id')
  t.equal(ok.headers.get('access-control-max-age'), '600')
  t.equal(ok.headers.get('vary'), 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
  t.equal(await ok.text(), '')

  const denied = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: 'https://evilexample.com', 'access-control-request-method': 'POST' } })
  t.equal(denied.status, 403)
  t.same([...denied.headers.keys()].filter((k) => k.startsWith('access-control-')), [])
  t.equal(denied.headers.get('vary'), 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
  const body = await denied.json() as { error: { code: string; message: string; requestId: string } }
  t.equal(body.error.code, 'cors_preflight_denied')
  t.match(body.error.message, /no entry of allowedOrigins/)
  t.equal(body.error.requestId, denied.headers.get('x-request-id'))

  // A preflight for a path that is not routed is still answered, not 404 (docs/ARCHITECTURE.md, "The
  // request path", step 4).
  const unrouted = await fetch(`${sc.url}/nowhere`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } })
  t.equal(unrouted.status, 204)
  t.equal(up.received.length, before, 'the upstream saw no OPTIONS at all')
})

t.test('request headers split over several lines with odd spacing are all considered', async (t) => {
  const res = await rawRequest('/process/text', 'OPTIONS', [
    ['Origin', APP], ['Access-Control-Request-Method', 'POST'],
    ['Access-Control-Request-Headers', ' Content-Type ,, '], ['Access-Control-Request-Headers', 'X-REQUEST-ID,content-type']
  ])
  t.equal(res.status, 204)
  const denied = await rawRequest('/process/text', 'OPTIONS', [
    ['Origin', APP], ['Access-Control-Request-Method', 'POST'],
    ['Access-Control-Request-Headers', 'content-type'], ['Access-Control-Request-Headers', 'authorization']
  ])
  t.equal(denied.status, 403)
})

t.test('a disallowed origin gets 403 and never reaches the upstream', async (t) => {
  const before = up.received.length
  for (const origin of ['https://evilexample.com', 'https://app.example.com.evil.net', 'null', 'https://APP.example.com', 'https://app.example.com:443', 'https://example.com']) {
    const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, origin }, body: '{}' })
    t.equal(res.status, 403, origin)
    t.equal(res.headers.get('access-control-allow-origin'), null, `${origin}: no ACAO`)
    t.equal(res.headers.get('vary'), 'Origin')
    t.equal((await res.json() as { error: { code: string } }).error.code, 'cors_origin_denied')
  }
  // Two Origin headers (Node joins them) never match either.
  const twice = await rawRequest('/process/text', 'POST', [['Origin', APP], ['Origin', 'https://evil.example']])
  t.equal(twice.status, 403)
  t.equal(up.received.length, before)
})

t.test('a same-origin request passes the origin check without CORS headers', async (t) => {
  const host = new URL(sc.url).host
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, origin: `http://${host}` }, body: '{}' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), null)
  // X-Forwarded-* are not believed without server.trustProxy.
  const spoofed = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, origin: 'https://evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }, body: '{}' })
  t.equal(spoofed.status, 403)
})

t.test('requests without Origin are forwarded untouched apart from Vary, request id and forwarding headers', async (t) => {
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'spoof', authorization: 'Bearer secret' }, body: '{"text":[]}' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), null)
  t.equal(res.headers.get('vary'), 'Origin')
  const rec = receivedWith(up, res.headers.get('x-request-id'))
  t.ok(rec !== undefined, 'the upstream got this request, with its request id')
  t.equal(rec?.headers['x-forwarded-for'], '127.0.0.1', 'client-supplied X-Forwarded-For replaced without trustProxy')
  t.equal(rec?.headers['x-forwarded-proto'], 'http')
  t.equal(rec?.headers['x-forwarded-host'], new URL(sc.url).host)
  t.equal(rec?.headers.authorization, 'Bearer secret', 'end-to-end headers pass through')
})

t.test('a valid x-request-id is kept and echoed; an invalid one is replaced', async (t) => {
  const kept = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, 'x-request-id': 'abc-123' }, body: '{}' })
  t.equal(kept.headers.get('x-request-id'), 'abc-123')
  t.ok(receivedWith(up, 'abc-123') !== undefined, 'and sent upstream')
  const replaced = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...json, 'x-request-id': 'bad id with spaces' }, body: '{}' })
  t.match(replaced.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
})

t.test('upstream CORS and hop-by-hop headers are dropped; Vary is merged', async (t) => {
  const res = await rawRequest('/leaky', 'GET', [['Origin', APP], ['Connection', 'keep-alive, x-secret'], ['X-Secret', 'drop me'], ['TE', 'trailers'], ['Keep-Alive', 'timeout=1'], ['X-Request-Id', 'leaky-1']])
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-credentials'], undefined)
  t.equal(res.headers.vary, 'Accept-Encoding, Origin')
  t.equal(res.headers['x-hop'], undefined, 'a header the upstream named in Connection is dropped')
  t.not(res.headers['keep-alive'], 'timeout=5', "the upstream's Keep-Alive is not passed on")
  t.equal(res.headers['x-upstream'], 'yes')
  const rec = receivedWith(up, 'leaky-1')
  t.ok(rec !== undefined, 'the upstream got this request')
  t.equal(rec?.headers['x-secret'], undefined, 'a header the client named in Connection is not forwarded')
  t.equal(rec?.headers.te, undefined)
  t.not(rec?.headers['keep-alive'], 'timeout=1')
})

t.test('unknown paths get 404, wrong methods 405 with Allow, unsafe paths 400: all readable by the page', async (t) => {
  const before = up.received.length
  const nf = await fetch(`${sc.url}/metrics`, { headers: { origin: APP } })
  t.equal(nf.status, 404)
  t.equal(nf.headers.get('access-control-allow-origin'), APP, 'errors carry the CORS headers of an allowed request')
  t.equal((await nf.json() as { error: { code: string } }).error.code, 'not_found')
  for (const path of ['/diagnostics', '/healthz', '/process/files/uri']) {
    t.equal((await fetch(`${sc.url}${path}`, { method: 'POST' })).status, 404, path)
  }
  const wrong = await fetch(`${sc.url}/process/text`, { headers: { origin: APP } })
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.get('allow'), 'POST')
  t.equal(wrong.headers.get('access-control-allow-origin'), APP)
  const bad = await rawRequest('/files/../metrics', 'GET', [])
  t.equal(bad.status, 400)
  t.equal(JSON.parse(bad.body).error.code, 'bad_path')
  const prefixed = await fetch(`${sc.url}/files/a/b`)
  t.equal(prefixed.status, 200)
  t.equal(up.received.length, before + 1, 'only the prefixed route reached the upstream')
})

t.test('an upstream that resets the connection gives 502 with the CORS headers', async (t) => {
  const res = await fetch(`${sc.url}/reset`, { method: 'POST', headers: { origin: APP }, body: 'x' })
  t.equal(res.status, 502)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal((await res.json() as { error: { code: string } }).error.code, 'upstream_error')
})

t.test('a plain OPTIONS (no Access-Control-Request-Method) is not a preflight: routed like any method', async (t) => {
  const res = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: APP } })
  t.equal(res.status, 405)
  t.equal(res.headers.get('allow'), 'POST')
})

t.test('one log line per request, without query strings or credentials', async (t) => {
  await fetch(`${sc.url}/process/text?email=jane@example.com`, { method: 'POST', headers: { ...json, origin: APP, authorization: 'Bearer s3cret', cookie: 'sid=s3cret', 'x-request-id': 'log-test-1' }, body: '{"text":["jane@example.com"]}' })
  const lines = sc.logs.filter((l) => l.requestId === 'log-test-1')
  t.equal(lines.length, 1)
  t.match(lines[0], { method: 'POST', route: '/process/text', status: 200, cors: 'allowed', corsMatched: APP, msg: 'request' })
  const all = JSON.stringify(sc.logs)
  t.notMatch(all, 'jane@example.com')
  t.notMatch(all, 's3cret')
})

t.test('a request target the router cannot decode gets a JSON 400', async (t) => {
  const res = await rawRequest('/files/%zz', 'GET', [])
  t.equal(res.status, 400)
  t.equal(JSON.parse(res.body).error.code, 'bad_request')
  const absolute = await rawRequest('http://elsewhere/files/a', 'GET', [])
  t.equal(JSON.parse(absolute.body).error.code, 'bad_path')
})

t.test('an upstream Vary of "*" stays "*"', async (t) => {
  const res = await fetch(`${sc.url}/vary-star`, { headers: { origin: APP } })
  t.equal(res.headers.get('vary'), '*')
})

t.test('an HTTP/1.0 request without Host is never taken for same-origin', async (t) => {
  const { connect } = await import('node:net')
  const url = new URL(sc.url)
  const socket = connect(Number(url.port), url.hostname)
  socket.end('POST /process/text HTTP/1.0\r\nOrigin: http://' + url.host + '\r\nContent-Length: 2\r\n\r\n{}')
  let text = ''
  for await (const chunk of socket) text += String(chunk)
  t.match(text, /^HTTP\/1\.1 403 /)
  t.match(text, /"code":"cors_origin_denied"/)
})

t.test('an upstream that sends no Connection header (HTTP/1.1 keep-alive by default) is proxied as is', async (t) => {
  const { createServer } = await import('node:net')
  // uvicorn, which serves the real container, need not send Connection: a raw server reproduces that.
  const bare = createServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'))
  })
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { bare.close() })
  const { startSidecar: start } = await import('./fixtures/sidecar.ts')
  const other = await start('routes: [{ path: /x, methods: [GET] }]', `http://127.0.0.1:${(bare.address() as { port: number }).port}`)
  t.teardown(other.close)
  const res = await fetch(`${other.url}/x`)
  t.equal(res.status, 200)
  t.equal(await res.text(), '{}')
})

t.test('an upstream 503 is relayed once, never retried against the busy GPU', async (t) => {
  const before = up.received.length
  const res = await fetch(`${sc.url}/unavailable`)
  t.equal(res.status, 503)
  t.same(await res.json(), { detail: 'busy' })
  t.equal(up.received.length, before + 1, 'exactly one upstream request')
})

t.test('a held body is forwarded with the client\'s own Content-Type and Content-Length, or none', async (t) => {
  const typed = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'typed-1' }, body: '{"text":["é"]}' })
  t.equal(typed.status, 200)
  const rec = receivedWith(up, 'typed-1')
  t.equal(rec?.headers['content-type'], 'application/json; charset=utf-8', 'parameters and all, not a parsed media type')
  t.equal(rec?.headers['content-length'], String(Buffer.byteLength('{"text":["é"]}')))
  t.equal(rec?.bytes, Buffer.byteLength('{"text":["é"]}'))
  const untyped = await rawRequest('/process/text', 'POST', [['Content-Length', '2'], ['X-Request-Id', 'untyped-1']], '{}')
  t.equal(untyped.status, 200)
  t.equal(receivedWith(up, 'untyped-1')?.headers['content-type'], undefined, 'no Content-Type is invented')
})
