// WebSocket passthrough (docs/ARCHITECTURE.md, "WebSockets"): frames both ways through a real ws
// upstream on loopback, text stays text and binary stays binary, close codes propagate, limits close
// with the right code, a vanished peer closes the other leg, a slow reader pushes back, and only codes
// and counts are logged.
import t from 'tap'
import WebSocket from 'ws'
import { closeCodeFor } from '../sidecar/websocket.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'
import { closedWith, nextMessage, opened, openWs, startWsUpstream, until, type WsUpstream } from './fixtures/ws.ts'

const APP = 'https://app.example.com'
const CONFIG = `
cors: { allowedOrigins: [${APP}] }
websocket: { enabled: true, maxMessageBytes: 2097152, idleTimeout: 30s }
`

let up: WsUpstream
let sc: TestSidecar
t.before(async () => {
  up = await startWsUpstream({ handleProtocols: (offered) => offered.has('pai.v1') ? 'pai.v1' : false })
  sc = await startSidecar(CONFIG, up.url)
})
t.teardown(async () => { await sc.close(); await up.close() })

const value = (name: string, labels: Record<string, string> = {}): Promise<number | undefined> =>
  sample(sc.metrics.registry.getSingleMetric(name), labels)

t.test('an allowed origin round-trips text and binary messages; headers are forwarded like REST', async (t) => {
  const before = up.handshakes.length
  const client = await opened(openWs(sc.url, { origin: APP, path: '/ws?lang=en', protocols: ['pai.v1'], headers: { 'x-api-key': 'k-123', 'x-request-id': 'ws-trip-1', cookie: 'a=b' } }))
  t.equal(client.protocol, 'pai.v1', 'the subprotocol the upstream chose reaches the client')
  const server = await up.next()
  client.send('{"text":["Jane Doe"]}')
  t.same(await nextMessage(client), { data: Buffer.from('{"text":["Jane Doe"]}'), binary: false })
  client.send(Buffer.from([0, 1, 2, 255]))
  t.same(await nextMessage(client), { data: Buffer.from([0, 1, 2, 255]), binary: true })
  server.send('pushed by the upstream')
  t.same((await nextMessage(client)).data.toString(), 'pushed by the upstream')

  t.equal(up.handshakes.length, before + 1)
  const h = up.handshakes.at(-1)
  t.equal(h?.url, '/ws?lang=en', 'the upstream path, with the query')
  t.match(h?.headers, {
    'x-api-key': 'k-123',
    cookie: 'a=b',
    origin: APP,
    'x-request-id': 'ws-trip-1',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': new URL(sc.url).host,
    'sec-websocket-protocol': 'pai.v1'
  })
  t.not(h?.headers.host, new URL(sc.url).host, 'Host names the upstream')
  t.equal(await value('pai_sidecar_websocket_connections'), 1)

  const closing = closedWith(client)
  client.close(1000, 'done')
  t.same(await closing, { code: 1000, reason: 'done' })
  await until(async () => await value('pai_sidecar_websocket_connections') === 0)
  const line = sc.logs.find((l) => l.msg === 'websocket' && l.requestId === 'ws-trip-1')
  t.match(line, { status: 101, route: '/ws', cors: 'allowed', corsMatched: APP, closedBy: 'client', clientCode: 1000, upstreamCode: 1000, messagesIn: 2, messagesOut: 3, bytesIn: 25, bytesOut: 47 })
  t.notMatch(JSON.stringify(sc.logs), /Jane|k-123|pushed by|lang=en|"done"/, 'no message, credential, query or close reason in the logs')
})

t.test('the upstream\'s close code and reason reach the client; a vanished upstream is 1011', async (t) => {
  const client = await opened(openWs(sc.url, { origin: APP }))
  const server = await up.next()
  const closing = closedWith(client)
  server.close(4001, 'model unloaded')
  t.same(await closing, { code: 4001, reason: 'model unloaded' })

  const client2 = await opened(openWs(sc.url, { origin: APP }))
  const server2 = await up.next()
  const closing2 = closedWith(client2)
  server2.terminate()
  t.same(await closing2, { code: 1011, reason: 'upstream connection lost' })

  const client3 = await opened(openWs(sc.url, { origin: APP }))
  const server3 = await up.next()
  const closing3 = closedWith(client3)
  server3.close()
  t.same(await closing3, { code: 1000, reason: '' }, 'a Close without a code (1005) is passed on as 1000')
  await until(async () => await value('pai_sidecar_websocket_closes_total', { closed_by: 'upstream' }) === 3)
})

t.test('a message that arrives while the other leg is already closed is dropped, not sent', async (t) => {
  const client = await opened(openWs(sc.url, { origin: APP }))
  const server = await up.next()
  const dropped = await value('pai_sidecar_websocket_messages_total', { direction: 'to_upstream' }) ?? 0
  // The client does not read, so it has not seen the Close the sidecar sends it.
  const socket = (client as unknown as { _socket: { pause: () => void; resume: () => void } })._socket
  socket.pause()
  const serverClosed = closedWith(server)
  server.close(1000)
  await serverClosed
  const got: string[] = []
  server.on('message', (d) => got.push(String(d)))
  client.send('too late')
  await until(async () => await value('pai_sidecar_websocket_messages_total', { direction: 'to_upstream' }) === dropped + 1)
  socket.resume()
  t.equal((await closedWith(client)).code, 1000)
  t.same(got, [])
})

t.test('a client that vanishes closes the upstream leg with 1001', async (t) => {
  const client = await opened(openWs(sc.url, { origin: APP }))
  const server = await up.next()
  const closing = closedWith(server)
  client.terminate()
  t.same(await closing, { code: 1001, reason: 'client went away' })
  const client2 = await opened(openWs(sc.url, { origin: APP }))
  const server2 = await up.next()
  const closing2 = closedWith(server2)
  client2.close(4000, 'tab closed')
  t.same(await closing2, { code: 4000, reason: 'tab closed' })
})

t.test('messages over websocket.maxMessageBytes close with 1009, in either direction', async (t) => {
  const client = await opened(openWs(sc.url, { origin: APP }))
  const server = await up.next()
  const fine = Buffer.alloc(2097152, 1)
  client.send(fine)
  t.equal((await nextMessage(client)).data.length, fine.length, 'a message of exactly the limit passes both ways')
  const [clientClose, serverClose] = [closedWith(client), closedWith(server)]
  client.send(Buffer.alloc(2097153))
  t.equal((await clientClose).code, 1009)
  t.same(await serverClose, { code: 1009, reason: 'message too big' })

  const client2 = await opened(openWs(sc.url, { origin: APP }))
  const server2 = await up.next()
  const [c2, s2] = [closedWith(client2), closedWith(server2)]
  server2.send(Buffer.alloc(2097153))
  t.same(await c2, { code: 1009, reason: 'message too big' })
  t.equal((await s2).code, 1009)
  await until(async () => await value('pai_sidecar_websocket_closes_total', { closed_by: 'message_too_big' }) === 2)
})

t.test('a slow upstream pushes back on the client instead of filling the sidecar', async (t) => {
  const client = await opened(openWs(sc.url, { origin: APP }))
  const server = await up.next()
  server.removeAllListeners('message')
  server.pause()
  const received: number[] = []
  server.on('message', (data) => { received.push((data as Buffer).length) })
  const MESSAGES = 64
  for (let i = 0; i < MESSAGES; i++) client.send(Buffer.alloc(1 << 20, i))
  // Once nothing moves any more, most of the 64 MiB must still be queued at the client: the
  // sidecar stopped reading. Without back-pressure it would have read it all into its heap.
  let last = -1
  await until(() => { const now = client.bufferedAmount; const still = now === last; last = now; return still }, 200)
  t.ok(client.bufferedAmount > 24 * (1 << 20), `${(client.bufferedAmount / (1 << 20)).toFixed(1)} MiB still queued at the client`)
  t.same(received, [], 'the paused upstream read nothing')
  server.resume()
  await until(() => received.length === MESSAGES)
  t.equal(client.bufferedAmount, 0)
  t.same(received, Array(MESSAGES).fill(1 << 20), 'every message arrived, whole')
  client.close()
})

t.test('an idle session is closed with 1001 on both legs', async (t) => {
  const idle = await startSidecar(`${CONFIG}\n`.replace('idleTimeout: 30s', 'idleTimeout: 150ms'), up.url)
  t.teardown(idle.close)
  const client = await opened(openWs(idle.url, { origin: APP }))
  const server = await up.next()
  const [c, s] = [closedWith(client), closedWith(server)]
  client.send('keeps it alive once')
  await nextMessage(client)
  t.same(await c, { code: 1001, reason: 'idle timeout' })
  t.same(await s, { code: 1001, reason: 'idle timeout' })
  await until(() => idle.logs.some((l) => l.closedBy === 'idle'))
})

t.test('traffic is counted by direction; upgrades by outcome', async (t) => {
  t.ok((await value('pai_sidecar_websocket_messages_total', { direction: 'to_upstream' }) ?? 0) >= 66)
  t.ok((await value('pai_sidecar_websocket_message_bytes_total', { direction: 'to_client' }) ?? 0) > 2097152)
  t.equal(await value('pai_sidecar_websocket_upgrades_total', { outcome: 'accepted' }), 10)
})

t.test('reserved close codes are never sent on (RFC 6455 §7.4.1)', async (t) => {
  t.equal(closeCodeFor(1005, 'client'), 1000)
  t.equal(closeCodeFor(1005, 'upstream'), 1000)
  t.equal(closeCodeFor(1006, 'client'), 1001)
  t.equal(closeCodeFor(1006, 'upstream'), 1011)
  t.equal(closeCodeFor(4999, 'upstream'), 4999)
  t.equal(WebSocket.OPEN, 1)
})
