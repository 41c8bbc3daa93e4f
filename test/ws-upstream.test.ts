// When the upstream cannot take the WebSocket, the client gets an HTTP answer before its
// handshake completes: 502 when the container is down or refuses the upgrade (a version before 3.6
// has no /ws), 504 when its handshake hangs. The admission slot is given back each time.
import t from 'tap'
import { connect, createServer, type Socket } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { startSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'
import { openWs, startWsPair, until } from './fixtures/ws.ts'
import { startUpstream } from './fixtures/upstream.ts'

const APP = 'https://app.example.com'
const CONFIG = `
cors: { allowedOrigins: [${APP}] }
upstream: { connectTimeout: 300ms, maxConcurrent: 1 }
websocket: { enabled: true }
`

/** A TCP server that accepts and never answers: a hung handshake. */
async function silent (): Promise<{ url: string; sockets: Socket[]; close: () => Promise<void> }> {
  const sockets: Socket[] = []
  const server = createServer((s) => { sockets.push(s); s.resume() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise((resolve) => server.close(resolve)) }
  }
}

t.test('upstream down: 502 upstream_unavailable, counted, slot returned', async (t) => {
  const sc = await startSidecar(CONFIG, 'http://127.0.0.1:9')
  t.teardown(sc.close)
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 502, body: { error: { code: 'upstream_unavailable' } } })
  t.equal(await sample(sc.metrics.upstreamErrors, { kind: 'connect' }), 1)
  t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'upstream_unavailable' }), 1)
  t.equal(await sample(sc.metrics.upstreamInFlight), 0)
})

t.test('an https upstream is reached over wss', async (t) => {
  const sc = await startSidecar(CONFIG, 'https://127.0.0.1:9')
  t.teardown(sc.close)
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 502, body: { error: { code: 'upstream_unavailable' } } })
})

t.test('an upstream that answers the upgrade with plain HTTP (no /ws before 3.6): 502 upstream_error naming its status', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(CONFIG, up.url)
  t.teardown(sc.close)
  const o = await openWs(sc.url, { origin: APP })
  t.match(o, { ok: false, status: 502, body: { error: { code: 'upstream_error', message: 'The de-identification service refused the WebSocket handshake (HTTP 200).' } } })
  t.equal(await sample(sc.metrics.upstreamErrors, { kind: 'reset' }), 1)
})

t.test('an upstream that picks no subprotocol when one was offered fails the handshake like a browser would: 502', async (t) => {
  const { sc } = await startWsPair(t, CONFIG, { handleProtocols: () => false })
  t.match(await openWs(sc.url, { origin: APP, protocols: ['pai.v1'] }), { ok: false, status: 502, body: { error: { code: 'upstream_error' } } })
})

t.test('an upstream handshake that hangs past upstream.connectTimeout: 504 upstream_timeout', async (t) => {
  const up = await silent()
  t.teardown(up.close)
  const sc = await startSidecar(CONFIG, up.url)
  t.teardown(sc.close)
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 504, body: { error: { code: 'upstream_timeout' } } })
  t.equal(await sample(sc.metrics.upstreamErrors, { kind: 'timeout' }), 1)
  t.equal(await sample(sc.metrics.upstreamInFlight), 0)
})

t.test('a client that leaves while the upstream handshake is pending cancels it at once', async (t) => {
  const up = await silent()
  t.teardown(up.close)
  const sc = await startSidecar(CONFIG.replace('300ms', '10s'), up.url)
  t.teardown(sc.close)
  const client = new WebSocket(`${sc.url.replace('http', 'ws')}/ws`, { headers: { origin: APP } })
  client.on('error', () => {})
  await until(() => up.sockets.length === 1)
  const upstreamClosed = new Promise((resolve) => (up.sockets[0] as Socket).once('close', resolve))
  client.terminate()
  await upstreamClosed
  await until(async () => await sample(sc.metrics.websocketUpgrades, { outcome: 'abandoned' }) === 1)
  t.equal(await sample(sc.metrics.upstreamInFlight), 0, 'the slot is free again')
  t.equal(await sample(sc.metrics.upstreamErrors, { kind: 'reset' }), 0, 'not the upstream\'s failure')
})

t.test('bytes a client sends before the handshake completes are kept for the session; too many end it', async (t) => {
  // An echoing upstream whose handshake takes a moment, so the client's early frame arrives meanwhile.
  const http = createHttpServer()
  const wss = new WebSocketServer({ server: http, verifyClient: (_i, cb) => { setTimeout(() => cb(true), 150) } })
  wss.on('connection', (ws) => ws.on('message', (d, binary) => ws.send(d, { binary })))
  let reached = 0
  http.on('upgrade', () => { reached++ })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const ws of wss.clients) ws.terminate(); http.closeAllConnections(); http.close() })
  const sc = await startSidecar(CONFIG, `http://127.0.0.1:${(http.address() as AddressInfo).port}`)
  t.teardown(sc.close)
  const handshake = `GET /ws HTTP/1.1\r\nHost: x\r\nOrigin: ${APP}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  const open = async (): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<unknown> }> => {
    const socket = connect(Number(new URL(sc.url).port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    const closed = new Promise((resolve) => socket.once('close', resolve))
    await new Promise((resolve) => socket.once('connect', resolve))
    const before = reached
    socket.write(handshake)
    // The sidecar is now waiting for the upstream's (slow) handshake.
    await until(() => reached === before + 1)
    return { socket, received: () => Buffer.concat(chunks), closed }
  }
  // A masked text frame "hi" (RFC 6455 §5.2), sent before the 101 arrives.
  const a = await open()
  a.socket.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]))
  await until(() => a.received().includes(Buffer.from([0x81, 0x02, 0x68, 0x69])))
  t.match(a.received().toString('latin1'), /^HTTP\/1\.1 101 /, 'the 101, then the echo of the early frame')
  a.socket.destroy()

  const b = await open()
  b.socket.write(Buffer.alloc(70 * 1024))
  await b.closed
  await until(async () => await sample(sc.metrics.websocketUpgrades, { outcome: 'abandoned' }) === 1)
  t.notMatch(b.received().toString('latin1'), /101/, 'never upgraded')
})
