// When the upstream cannot take the WebSocket (issue 9), the client gets an HTTP answer before its
// handshake completes: 502 when the container is down or refuses the upgrade (a version before 3.6
// has no /ws), 504 when its handshake hangs. The admission slot is given back each time.
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { startSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'
import { openWs, startWsUpstream, until } from './fixtures/ws.ts'
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
  const up = await startWsUpstream({ handleProtocols: () => false })
  t.teardown(up.close)
  const sc = await startSidecar(CONFIG, up.url)
  t.teardown(sc.close)
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
