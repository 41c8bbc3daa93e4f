// Optional per-client rate limit (off by default): 429 with Retry-After and the CORS headers.
import t from 'tap'
import { startUpstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

const APP = 'https://app.example.com'
const post = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/process/text`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json', ...headers }, body: '{}' })

t.test('past max requests in the window a client gets 429 with Retry-After, readable by the page', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
cors: { allowedOrigins: [${APP}] }
routes: [{ path: /process/text, methods: [POST] }]
limits: { rateLimit: { enabled: true, max: 3, window: 1m } }
`, up.url)
  t.teardown(sc.close)
  for (let i = 0; i < 3; i++) t.equal((await post(sc.url)).status, 200)
  const before = up.received.length
  const limited = await post(sc.url)
  t.equal(limited.status, 429)
  t.match(limited.headers.get('retry-after'), /^\d+$/)
  t.equal(limited.headers.get('access-control-allow-origin'), APP)
  t.equal((await limited.json() as { error: { code: string } }).error.code, 'rate_limited')
  t.equal(up.received.length, before, 'a limited request never reaches the upstream')
  const preflight = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } })
  t.equal(preflight.status, 204, 'preflights are answered locally and never limited')
  const denied = await post(sc.url, { origin: 'https://evil.example' })
  t.equal(denied.status, 403, 'the CORS check comes first')
})

t.test('off by default; X-Forwarded-For picks the client only behind a trusted proxy', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const open = await startSidecar(`cors: { allowedOrigins: [${APP}] }\nroutes: [{ path: /process/text, methods: [POST] }]`, up.url)
  t.teardown(open.close)
  for (let i = 0; i < 5; i++) t.equal((await post(open.url)).status, 200)

  const proxied = await startSidecar(`
server: { trustProxy: true }
cors: { allowedOrigins: [${APP}] }
routes: [{ path: /process/text, methods: [POST] }]
limits: { rateLimit: { enabled: true, max: 1, window: 1m } }
`, up.url)
  t.teardown(proxied.close)
  t.equal((await post(proxied.url, { 'x-forwarded-for': '203.0.113.1' })).status, 200)
  t.equal((await post(proxied.url, { 'x-forwarded-for': '203.0.113.2' })).status, 200, 'another client has its own budget')
  t.equal((await post(proxied.url, { 'x-forwarded-for': '203.0.113.1' })).status, 429)
  // The client cannot buy a new budget by writing its own entries to the left of the proxy's.
  t.equal((await post(proxied.url, { 'x-forwarded-for': '10.9.9.9, 203.0.113.1' })).status, 429, 'a forged leftmost entry does not change the key')

  const direct = await startSidecar(`
cors: { allowedOrigins: [${APP}] }
routes: [{ path: /process/text, methods: [POST] }]
limits: { rateLimit: { enabled: true, max: 1, window: 1m } }
`, up.url)
  t.teardown(direct.close)
  t.equal((await post(direct.url, { 'x-forwarded-for': '203.0.113.1' })).status, 200)
  t.equal((await post(direct.url, { 'x-forwarded-for': '203.0.113.2' })).status, 429, 'without trustProxy a spoofed X-Forwarded-For does not buy a new budget')
})
