// Graceful shutdown with WebSockets open (docs/ARCHITECTURE.md, "Shutdown"): they keep working during
// shutdown.delay, are closed with 1001 "going away" on both legs once it ends, and never hold the
// process past shutdown.timeout. Upgrades that arrive while closing get 503 shutting_down.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { serve } from '../sidecar/server.ts'
import { sample } from './fixtures/metrics.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'
import { closedWith, nextMessage, opened, openWs, startWsUpstream, until } from './fixtures/ws.ts'

const APP = 'https://app.example.com'
const base = (shutdown: string, upstream: string) => snapshot(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
cors: { allowedOrigins: [${APP}] }
upstream: { maxConcurrent: 1, queue: { size: 4, timeout: 30s } }
websocket: { enabled: true }
shutdown: ${shutdown}
`, upstream)

function sink (lines: string[]): Writable {
  return new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })
}

t.test('SIGTERM: sockets keep working during shutdown.delay, then both legs get 1001 going away', async (t) => {
  const up = await startWsUpstream()
  t.teardown(up.close)
  const logs: string[] = []
  const r = await serve(base('{ delay: 300ms, timeout: 5s }', up.url), { version: 't', destination: sink(logs) })
  const client = await opened(openWs(r.publicUrl, { origin: APP }))
  const server = await up.next()
  const [c, s] = [closedWith(client), closedWith(server)]
  r.shutdown('SIGTERM')
  client.send('during the delay')
  t.equal((await nextMessage(client)).data.toString(), 'during the delay')
  t.same(await c, { code: 1001, reason: 'going away' })
  t.same(await s, { code: 1001, reason: 'going away' })
  t.equal(await r.done, 0)
  await until(() => logs.join('').includes('"closedBy":"shutdown"'))
})

t.test('shutdown.timeout ends sockets whose peer never answers the Close, and upgrades still waiting', async (t) => {
  const up = await startWsUpstream({ echo: false })
  t.teardown(up.close)
  const logs: string[] = []
  const r = await serve(base('{ delay: 0s, timeout: 300ms }', up.url), { version: 't', destination: sink(logs) })
  const client = await opened(openWs(r.publicUrl, { origin: APP }))
  const server = await up.next()
  // Neither peer reads any more, so neither answers the sidecar's Close frame.
  ;(client as unknown as { _socket: { pause: () => void } })._socket.pause()
  ;(server as unknown as { _socket: { pause: () => void } })._socket.pause()
  const queued = openWs(r.publicUrl, { origin: APP }).catch((err: Error) => err)
  await until(async () => /^pai_sidecar_queue_depth 1$/m.test(await (await fetch(`${r.adminUrl}/metrics`)).text()))
  const started = performance.now()
  r.shutdown('SIGTERM')
  t.equal(await r.done, 0)
  t.ok(performance.now() - started < 10_000, 'not ws\'s own 30 s close timeout')
  t.match(logs.join(''), /shutdown\.timeout reached/)
  t.type(await queued, Error, 'the queued upgrade was cut off')
  client.terminate()
})

t.test('a second signal terminates open sockets at once', async (t) => {
  const up = await startWsUpstream()
  t.teardown(up.close)
  const r = await serve(base('{ delay: 10s, timeout: 10s }', up.url), { version: 't', destination: sink([]) })
  const client = await opened(openWs(r.publicUrl, { origin: APP }))
  const c = closedWith(client)
  r.shutdown('SIGTERM')
  r.shutdown('SIGINT')
  t.equal(await r.done, 1)
  t.equal((await c).code, 1006, 'cut, not closed')
})

t.test('while closing, upgrades get 503 shutting_down, also one whose upstream handshake was under way', async (t) => {
  let closing = false
  const http = createServer()
  const wss = new WebSocketServer({
    server: http,
    // A slow upstream handshake, during which the sidecar starts closing.
    verifyClient: (_info, cb) => { setTimeout(() => cb(true), 150) }
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const ws of wss.clients) ws.terminate(); http.closeAllConnections(); http.close() })
  const store = new ConfigStore(snapshot(`cors: { allowedOrigins: [${APP}] }\nwebsocket: { enabled: true }\n`, `http://127.0.0.1:${(http.address() as AddressInfo).port}`))
  const metrics = testMetrics(store)
  const app = await buildPublicApp({ store, metrics, closing: () => closing, logger: createLogger('silent', sink([])) })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const pending = openWs(url, { origin: APP })
  await until(() => wss.clients.size === 0 && http.listenerCount('upgrade') > 0)
  await new Promise((resolve) => setTimeout(resolve, 50))
  closing = true
  t.match(await pending, { ok: false, status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'shutting_down' } } })
  t.match(await openWs(url, { origin: APP }), { ok: false, status: 503, body: { error: { code: 'shutting_down' } } })
  t.equal(await sample(metrics.websocketUpgrades, { outcome: 'shutting_down' }), 2)
  await until(() => wss.clients.size === 0)
  t.equal(WebSocket.CLOSED, 3)
})
