// Cross-site WebSocket hijacking (docs/ARCHITECTURE.md, "WebSockets"): WebSockets are outside CORS, so
// the upgrade's Origin is decided by the same CORS decision as HTTP. A refusal is a real HTTP answer in
// our JSON before any handshake, and the upstream never hears of it. Off by default; other upgrades
// stay ordinary requests.
import t from 'tap'
import { startSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'
import { exchange, errorOf } from './fixtures/raw.ts'
import { opened, openWs, startWsPair, until } from './fixtures/ws.ts'

const APP = 'https://app.example.com'
const CONFIG = `
cors: { allowedOrigins: [${APP}, "https://*.example.com"] }
shadow: { allowedOrigins: [${APP}] }
websocket: { enabled: true }
`
const HANDSHAKE = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'

t.test('allowed origins open; denied, look-alike, null and malformed origins get 403 and never reach the upstream', async (t) => {
  const { up, sc } = await startWsPair(t, CONFIG)

  for (const origin of [APP, 'https://eu.app.example.com']) {
    const ws = await opened(openWs(sc.url, { origin }))
    ws.close()
  }
  const self = await opened(openWs(sc.url, { origin: sc.url }))
  self.close()
  t.equal(up.handshakes.length, 3, 'allowed and same-origin upgrades reached the upstream')

  const refusals: [string, string][] = [
    ['https://evil.example', 'origin_not_allowed'],
    ['https://example.com', 'origin_not_allowed'],
    ['https://evilexample.com', 'origin_not_allowed'],
    ['https://app.example.com.evil.example', 'origin_not_allowed'],
    ['http://app.example.com', 'origin_not_allowed'],
    ['https://app.example.com:443', 'invalid_origin'],
    ['null', 'null_origin']
  ]
  for (const [origin, reason] of refusals) {
    const o = await openWs(sc.url, { origin, headers: { 'x-request-id': `deny-${reason}` } })
    t.notOk(o.ok, origin)
    if (o.ok) continue
    t.equal(o.status, 403, origin)
    t.equal(o.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(o.headers['x-request-id'], `deny-${reason}`)
    t.same(o.body, { error: { code: 'cors_origin_denied', message: `This origin is not allowed by the CORS policy of this API (${reason}).`, requestId: `deny-${reason}` } }, origin)
  }
  t.equal(up.handshakes.length, 3, 'no refused upgrade reached the upstream')
  t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'cors_origin_denied' }), refusals.length)
  t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'accepted' }), 3)
  t.match(sc.logs.find((l) => l.requestId === 'deny-null_origin'), { msg: 'websocket', status: 403, error: 'cors_origin_denied', cors: 'denied', corsReason: 'null_origin' })
  const eu = sc.logs.find((l) => l.msg === 'websocket' && l.corsMatched === 'https://*.example.com')
  t.match(eu, { cors: 'allowed', shadow: 'denied', shadowReason: 'origin_not_allowed' }, 'the shadow policy is decided too')
  t.equal(await sample(sc.metrics.shadowDecisions, { active: 'allowed', shadow: 'denied' }), 1)
  t.notMatch(JSON.stringify(sc.logs), /evil/, 'no raw origin is logged')
})

t.test('cors.enforce: false does not let a denied origin open a WebSocket', async (t) => {
  const { up, sc } = await startWsPair(t, `${CONFIG}\n`.replace('"https://*.example.com"] }', '"https://*.example.com"], enforce: false }'))
  t.equal(sc.store.current().config.cors.enforce, false)
  const o = await openWs(sc.url, { origin: 'https://evil.example' })
  t.match(o, { ok: false, status: 403, body: { error: { code: 'cors_origin_denied' } } })
  t.equal(up.handshakes.length, 0)
})

t.test('an upgrade without Origin is refused unless websocket.allowMissingOrigin', async (t) => {
  const { up, sc } = await startWsPair(t, CONFIG)
  const o = await openWs(sc.url, { origin: undefined })
  t.match(o, { ok: false, status: 403, body: { error: { code: 'origin_required', message: 'A WebSocket upgrade must carry an Origin header on this API.' } } })
  t.equal(up.handshakes.length, 0)

  const open = await startSidecar(`${CONFIG}\n`.replace('enabled: true', 'enabled: true, allowMissingOrigin: true'), up.url)
  t.teardown(open.close)
  const ws = await opened(openWs(open.url, { origin: undefined }))
  t.equal(up.handshakes.length, 1, 'a non-browser client without Origin gets through when opted in')
  ws.close()
  await until(() => open.logs.some((l) => l.msg === 'websocket'))
  t.match(open.logs.find((l) => l.msg === 'websocket'), { status: 101, cors: 'none', corsReason: 'no_origin' })
})

t.test('off by default: an upgrade on /ws is an ordinary request (404), and so are upgrades elsewhere', async (t) => {
  const { up, sc } = await startWsPair(t, `cors: { allowedOrigins: [${APP}] }`)
  t.equal(sc.store.current().config.websocket.enabled, false)
  const o = await openWs(sc.url, { origin: APP })
  t.match(o, { ok: false, status: 404, body: { error: { code: 'not_found' } } })
  t.match(o.ok ? {} : o.headers, { 'access-control-allow-origin': APP }, 'the answer is the HTTP path\'s, CORS headers included')
  t.equal(up.handshakes.length, 0)

  const on = await startSidecar(CONFIG, up.url)
  t.teardown(on.close)
  const elsewhere = await openWs(on.url, { origin: APP, path: '/process/text' })
  t.match(elsewhere, { ok: false, status: 405, body: { error: { code: 'method_not_allowed' } } })
  const res = await exchange(on.url, 'POST /process/text HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\n{}')
  t.equal(res.response?.status, 404, 'a POST offering h2c is forwarded as HTTP/1.1 (the fixture upstream answers 404 to any HTTP request)')
  t.equal(errorOf(res.response), undefined, 'the upstream\'s answer, not one of ours')
  const post = await exchange(on.url, `POST /ws HTTP/1.1\r\nHost: x\r\nOrigin: ${APP}\r\n${HANDSHAKE}Content-Length: 0\r\n\r\n`)
  t.equal(errorOf(post.response)?.code, 'not_found', 'only GET upgrades')
})

t.test('on a Node without shouldUpgradeCallback (< 24.9), other upgrades are refused by the listener', async (t) => {
  const { up, sc } = await startWsPair(t, CONFIG)
  const server = sc.app.server as unknown as { shouldUpgradeCallback: (this: typeof sc.app.server) => boolean }
  server.shouldUpgradeCallback = function () { return this.listenerCount('upgrade') > 0 }
  const o = await openWs(sc.url, { origin: APP, path: '/process/text' })
  t.match(o, { ok: false, status: 400, body: { error: { code: 'upgrade_refused' } } })
  t.equal(up.handshakes.length, 0)
})

t.test('malformed handshakes, a missing Host and too many headers are refused before the upstream', async (t) => {
  const { up, sc } = await startWsPair(t, `${CONFIG}\nlimits: { maxHeaders: 12 }\n`)
  const send = async (head: string): Promise<string | undefined> => {
    const x = await exchange(sc.url, `GET /ws HTTP/1.1\r\n${head}\r\n`)
    t.ok(x.closed, 'the connection is closed after the refusal')
    return errorOf(x.response)?.code
  }
  const good = `Host: x\r\nOrigin: ${APP}\r\n`
  t.equal(await send(`${good}${HANDSHAKE.replace('dGhlIHNhbXBsZSBub25jZQ==', 'short')}`), 'bad_request')
  t.equal(await send(`${good}${HANDSHAKE.replace('Version: 13', 'Version: 12')}`), 'bad_request')
  t.equal(await send(`${good}${HANDSHAKE}Sec-WebSocket-Protocol: a, a\r\n`), 'bad_request')
  t.equal(await send(`${good}${HANDSHAKE}Sec-WebSocket-Protocol: a b\r\n`), 'bad_request')
  t.equal(await send(`Origin: ${APP}\r\n${HANDSHAKE}`), 'bad_request')
  t.equal(await send(`${good}${HANDSHAKE}${'X-A: 1\r\n'.repeat(8)}`), 'headers_too_large')
  t.equal(up.handshakes.length, 0)
})

t.test('websocket.maxConnections bounds open sockets: 503 websocket_limit with Retry-After', async (t) => {
  const { sc } = await startWsPair(t, `${CONFIG}\n`.replace('enabled: true', 'enabled: true, maxConnections: 1'))
  const first = await opened(openWs(sc.url, { origin: APP }))
  const o = await openWs(sc.url, { origin: APP })
  t.match(o, { ok: false, status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'websocket_limit' } } })
  const closed = new Promise((resolve) => first.once('close', resolve))
  first.close()
  await closed
  while (sc.app.websockets.size > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const again = await opened(openWs(sc.url, { origin: APP }))
  again.close()
})

t.test('a reload of the origins applies to the next upgrade; open sockets stay', async (t) => {
  const { up, sc } = await startWsPair(t, CONFIG)
  const open = await opened(openWs(sc.url, { origin: APP }))
  t.equal((await openWs(sc.url, { origin: 'https://new.example.org' })).ok, false)
  const { loadConfigText } = await import('../sidecar/config/load.ts')
  const next = loadConfigText('cors: { allowedOrigins: [https://new.example.org] }\nwebsocket: { enabled: true }\n', 'test', { upstream: up.url })
  if (!next.ok) throw new Error(next.errors.join())
  sc.store.replace(next.snapshot)
  const ws = await opened(openWs(sc.url, { origin: 'https://new.example.org' }))
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 403 })
  open.send('still here')
  t.equal((await new Promise<Buffer>((resolve) => open.once('message', resolve))).toString(), 'still here', 'the socket opened before the reload keeps working')
  ws.close()
  open.close()

  const off = loadConfigText('cors: { allowedOrigins: [https://new.example.org] }\n', 'test', { upstream: up.url })
  if (!off.ok) throw new Error(off.errors.join())
  sc.store.replace(off.snapshot)
  t.match(await openWs(sc.url, { origin: 'https://new.example.org' }), { ok: false, status: 404 }, 'websocket.enabled reloads too')
})
