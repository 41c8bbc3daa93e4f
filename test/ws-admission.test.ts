// An open WebSocket holds one upstream.maxConcurrent slot for its lifetime, unless
// websocket.countsAsInFlight is false: upgrades queue like requests, and a full queue or a long
// wait is an HTTP 503 before any handshake.
import t from 'tap'
import { sample } from './fixtures/metrics.ts'
import { closedWith, opened, openWs, startWsPair, until } from './fixtures/ws.ts'

const APP = 'https://app.example.com'
const config = (ws: string, queue = '{ size: 1, timeout: 10s }') => `
cors: { allowedOrigins: [${APP}] }
upstream: { maxConcurrent: 1, queue: ${queue} }
websocket: ${ws}
`

t.test('an open WebSocket takes the only slot: the next upgrade waits in the queue until it closes', async (t) => {
  const { up, sc } = await startWsPair(t, config('{ enabled: true }'))
  const first = await opened(openWs(sc.url, { origin: APP }))
  t.equal(await sample(sc.metrics.upstreamInFlight), 1, 'the slot shows in upstream_in_flight_requests')
  let secondOpen = false
  const second = opened(openWs(sc.url, { origin: APP })).then((ws) => { secondOpen = true; return ws })
  await until(async () => await sample(sc.metrics.queueDepth) === 1)
  t.equal(up.handshakes.length, 1, 'the queued upgrade has not reached the upstream')
  t.notOk(secondOpen)

  // The queue (size 1) is full now: a third upgrade and an HTTP request are refused alike.
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'queue_full' } } })
  const http = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: APP }, body: '{}' })
  t.equal(http.status, 503)

  first.close()
  const ws2 = await second
  t.equal(up.handshakes.length, 2)
  t.equal(await sample(sc.metrics.upstreamInFlight), 1)
  ws2.close()
  await until(async () => await sample(sc.metrics.upstreamInFlight) === 0)
  t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'queue_full' }), 1)
})

t.test('a queued upgrade that waits past upstream.queue.timeout gets 503 queue_timeout', async (t) => {
  const { up, sc } = await startWsPair(t, config('{ enabled: true }', '{ size: 4, timeout: 200ms }'))
  const first = await opened(openWs(sc.url, { origin: APP }))
  t.match(await openWs(sc.url, { origin: APP }), { ok: false, status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'queue_timeout' } } })
  t.equal(up.handshakes.length, 1)
  first.close()
})

t.test('a client that leaves while queued is withdrawn and never reaches the upstream', async (t) => {
  const { up, sc } = await startWsPair(t, config('{ enabled: true }', '{ size: 4, timeout: 10s }'))
  const first = await opened(openWs(sc.url, { origin: APP }))
  const { default: WebSocket } = await import('ws')
  const quitter = new WebSocket(`${sc.url.replace('http', 'ws')}/ws`, { headers: { origin: APP } })
  quitter.on('error', () => {})
  await until(async () => await sample(sc.metrics.queueDepth) === 1)
  quitter.terminate()
  await until(async () => await sample(sc.metrics.queueRejections, { reason: 'abandoned' }) === 1)
  t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'abandoned' }), 1)
  const closing = closedWith(first)
  first.close()
  await closing
  t.equal(up.handshakes.length, 1, 'the upstream only ever saw the first')
})

t.test('countsAsInFlight: false leaves the slots to HTTP requests', async (t) => {
  const { sc } = await startWsPair(t, config('{ enabled: true, countsAsInFlight: false }', '{ size: 0, timeout: 1s }'))
  const a = await opened(openWs(sc.url, { origin: APP }))
  const b = await opened(openWs(sc.url, { origin: APP }))
  t.equal(await sample(sc.metrics.upstreamInFlight), 0)
  t.equal(await sample(sc.metrics.websocketConnections), 2)
  a.close()
  b.close()
})
