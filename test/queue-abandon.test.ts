// Clients that go away: a queued request whose client disconnects leaves the queue at once and never
// reaches the upstream; a connection reset before a request is complete is not an error to answer.
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'

/** A sidecar with one upstream slot, taken by a request the upstream never answers; free() ends it. */
async function oneBusySlot (t: Test, queueTimeout: string): Promise<{ sc: TestSidecar; up: Upstream; free: () => Promise<void> }> {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
upstream: { maxConcurrent: 1, queue: { size: 5, timeout: ${queueTimeout} } }
routes: [{ path: /hang, methods: [POST] }, { path: /process/text, methods: [POST] }]
`, up.url)
  t.teardown(sc.close)
  const busy = new AbortController()
  const first = fetch(`${sc.url}/hang`, { method: 'POST', body: 'x', signal: busy.signal }).catch(() => undefined)
  while (up.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  return { sc, up, free: async () => { busy.abort(); await first } }
}

t.test('a queued request whose client leaves never reaches the upstream', async (t) => {
  const { sc, up, free } = await oneBusySlot(t, '10s')
  const gone = new AbortController()
  const queued = fetch(`${sc.url}/process/text`, { method: 'POST', body: 'x', signal: gone.signal }).catch((err: Error) => err)
  const depth = () => sample(sc.metrics.queueDepth)
  while (await depth() !== 1) await new Promise((resolve) => setTimeout(resolve, 10))
  gone.abort()
  t.type(await queued, Error)
  while (await depth() !== 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await sample(sc.metrics.queueRejections, { reason: 'abandoned' }), 1, 'counted as abandoned')
  await free()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(up.received.map((r) => r.url), ['/hang'], 'the abandoned request never reached the upstream')
})

t.test('a request that waits longer than queue.timeout gets 503 queue_timeout with Retry-After', async (t) => {
  const { sc, free } = await oneBusySlot(t, '200ms')
  const start = performance.now()
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', body: 'x' })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.equal((await res.json() as { error: { code: string } }).error.code, 'queue_timeout')
  t.ok(performance.now() - start >= 190, 'after about queue.timeout')
  await free()
})

t.test('a connection reset in the middle of the headers is dropped quietly', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar('routes: [{ path: /process/text, methods: [POST] }]', up.url)
  t.teardown(sc.close)
  const u = new URL(sc.url)
  const socket = connect(Number(u.port), u.hostname)
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write('POST /process/text HTTP/1.1\r\nHost: x\r\nContent-')
  await new Promise((resolve) => setTimeout(resolve, 50))
  socket.resetAndDestroy()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const counted = (await sc.metrics.clientErrors.get()).values.reduce((n, v) => n + v.value, 0)
  t.equal(counted, 0, 'not counted as a client error')
  t.equal((await fetch(`${sc.url}/process/text`, { method: 'POST', body: '{}' })).status, 200)
})
