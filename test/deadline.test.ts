// upstream.requestTimeout bounds the whole exchange: a client that uploads slowly cannot hold a GPU
// slot, nor a connection, for ever. A body of at most 64 KiB with a declared length is read whole
// before it is admitted: a trickle is the client's delay (408) and never reaches the upstream. A
// larger body streams once admitted, and a trickle then is cut at requestTimeout (504). A client
// that leaves is not the upstream's fault.
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { receivedWith, startUpstream } from './fixtures/upstream.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'

const CONFIG = `
upstream: { maxConcurrent: 1, requestTimeout: 600ms, queue: { size: 4, timeout: 5s } }
limits: { bodyIdleTimeout: 400ms }
routes: [{ path: /echo, methods: [POST] }, { path: /process/text, methods: [POST] }]
`

/** A body of `length` declared bytes, one byte every 200 ms: never idle for bodyIdleTimeout, never finished. */
async function trickle (sc: TestSidecar, length: number, id: string): Promise<{ answer: string; took: number }> {
  const u = new URL(sc.url)
  const socket = connect(Number(u.port), u.hostname)
  let answer = ''
  socket.setEncoding('utf8').on('data', (c: string) => { answer += c })
  socket.on('error', () => undefined)
  socket.write(`POST /process/text HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\nContent-Length: ${length}\r\n\r\n`)
  const drip = setInterval(() => { if (!socket.destroyed) socket.write('a') }, 200)
  const start = performance.now()
  await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  clearInterval(drip)
  return { answer, took: performance.now() - start }
}

async function timeouts (sc: TestSidecar): Promise<number | undefined> {
  return (await sc.metrics.upstreamErrors.get()).values.find((v) => v.labels.kind === 'timeout')?.value
}

async function slotFree (t: Test, sc: TestSidecar): Promise<void> {
  t.equal((await fetch(`${sc.url}/process/text`, { method: 'POST', body: '{}' })).status, 200, 'the slot is free')
}

/** A sidecar in front of its own upstream, a trickle of `length` declared bytes, and what came of it. */
async function trickled (t: Test, length: number, id: string) {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(CONFIG, up.url)
  t.teardown(sc.close)
  const { answer, took } = await trickle(sc, length, id)
  t.ok(took < 2000, `answered after ${took.toFixed(0)} ms (requestTimeout 600 ms)`)
  return { answer, sc, forwarded: receivedWith(up, id) !== undefined }
}

t.test('a slow small upload is cut at requestTimeout with 408 and never reaches the upstream', async (t) => {
  const { answer, sc, forwarded } = await trickled(t, 100, 'trickle-small')
  t.match(answer, /^HTTP\/1\.1 408 /)
  t.match(answer, /"code":"request_timeout"/)
  t.equal(forwarded, false, 'the upstream saw nothing of it')
  t.equal(await timeouts(sc), 0, 'not counted as an upstream timeout: the client was slow')
  await slotFree(t, sc)
})

t.test('a slow large upload is cut at requestTimeout with 504, and its slot is freed', async (t) => {
  const { answer, sc, forwarded } = await trickled(t, 100_000, 'trickle-large')
  t.match(answer, /^HTTP\/1\.1 504 /)
  t.match(answer, /"code":"upstream_timeout"/)
  t.equal(forwarded, true, 'it had been streaming to the upstream')
  t.equal(await timeouts(sc), 1, 'counted once as a timeout')
  await slotFree(t, sc)
})

/** A client that sends 10 bytes of a body of `length`, then leaves. */
async function leave (t: Test, length: number, id: string): Promise<{ sc: TestSidecar; line: Record<string, unknown> | undefined; forwarded: boolean }> {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar('routes: [{ path: /echo, methods: [POST] }]', up.url)
  t.teardown(sc.close)
  const u = new URL(sc.url)
  const socket = connect(Number(u.port), u.hostname)
  socket.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\nX-Request-Id: ${id}\r\n\r\n0123456789`)
  // Until the sidecar has read what was sent: it forwarded the request, or (held) logged nothing yet.
  for (let i = 0; i < 200 && receivedWith(up, id) === undefined && length > 65536; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
  let line: Record<string, unknown> | undefined
  for (let i = 0; i < 200 && line === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    line = sc.logs.find((l) => l.requestId === id && l.aborted === true)
  }
  const errors = (await sc.metrics.upstreamErrors.get()).values.reduce((n, v) => n + v.value, 0)
  t.equal(errors, 0, 'no upstream error counted')
  return { sc, line, forwarded: receivedWith(up, id) !== undefined }
}

t.test('a client that leaves mid-upload is logged as aborted, not counted as an upstream failure', async (t) => {
  t.test('a held body: nothing was forwarded', async (t) => {
    const { line, forwarded } = await leave(t, 100, 'leaver-held')
    t.match(line, { msg: 'request aborted by the client', route: '/echo' })
    t.equal(forwarded, false, 'the upstream never saw it')
  })
  t.test('a streamed body: what was forwarded is counted', async (t) => {
    const { line, forwarded } = await leave(t, 100_000, 'leaver-streamed')
    t.match(line, { msg: 'request aborted by the client', route: '/echo', bytesIn: 10 })
    t.equal(forwarded, true)
  })
})
