// upstream.requestTimeout bounds the whole exchange from the moment a request is admitted: a client
// that uploads slowly cannot hold a GPU slot for ever. And a client that leaves is not the upstream's fault.
import t from 'tap'
import { connect } from 'node:net'
import { startUpstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

t.test('a slow upload is cut at requestTimeout with 504, and its slot is freed', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
upstream: { maxConcurrent: 1, requestTimeout: 600ms, queue: { size: 4, timeout: 5s } }
limits: { bodyIdleTimeout: 400ms }
routes: [{ path: /echo, methods: [POST] }, { path: /process/text, methods: [POST] }]
`, up.url)
  t.teardown(sc.close)
  const u = new URL(sc.url)
  const socket = connect(Number(u.port), u.hostname)
  let answer = ''
  socket.setEncoding('utf8').on('data', (c: string) => { answer += c })
  socket.write('POST /process/text HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n')
  // One byte every 200 ms: never idle for bodyIdleTimeout, never finished.
  const drip = setInterval(() => { if (!socket.destroyed) socket.write('a') }, 200)
  const start = performance.now()
  await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  clearInterval(drip)
  const took = performance.now() - start
  t.match(answer, /^HTTP\/1\.1 504 /)
  t.match(answer, /"code":"upstream_timeout"/)
  t.ok(took < 2000, `answered after ${took.toFixed(0)} ms (requestTimeout 600 ms)`)
  const timeouts = (await sc.metrics.upstreamErrors.get()).values.find((v) => v.labels.kind === 'timeout')?.value
  t.equal(timeouts, 1, 'counted once as a timeout')
  t.equal((await fetch(`${sc.url}/process/text`, { method: 'POST', body: '{}' })).status, 200, 'the slot was freed')
})

t.test('a client that leaves mid-upload is logged as aborted, not counted as an upstream failure', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar('routes: [{ path: /echo, methods: [POST] }]', up.url)
  t.teardown(sc.close)
  const u = new URL(sc.url)
  const socket = connect(Number(u.port), u.hostname)
  socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Request-Id: leaver-1\r\n\r\n0123456789')
  while (up.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  socket.destroy()
  await new Promise((resolve) => setTimeout(resolve, 200))
  const errors = (await sc.metrics.upstreamErrors.get()).values.reduce((n, v) => n + v.value, 0)
  t.equal(errors, 0, 'no upstream error counted')
  t.match(sc.logs.find((l) => l.requestId === 'leaver-1' && l.aborted === true), { msg: 'request aborted by the client', route: '/echo', bytesIn: 10 })
})
