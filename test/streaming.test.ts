// Bodies stream both ways without buffering; limits and upstream failures map to precise statuses.
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { receivedWith, startUpstream, type Received, type Upstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

const APP = 'https://app.example.com'
const ROUTES = `
routes:
  - { path: /echo, methods: [POST] }
  - { path: /slow, methods: [POST] }
  - { path: /hang, methods: [POST] }
  - { path: /process/text, methods: [POST] }
cors: { allowedOrigins: [${APP}] }
`

let up: Upstream
t.before(async () => { up = await startUpstream() })
t.teardown(async () => { await up.close() })

/** A body of `total` bytes in 64 KiB chunks, produced as it is read (never held in memory). */
function generated (total: number): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(65536).fill(97)
  let sent = 0
  return new ReadableStream({
    pull (c) {
      if (sent >= total) { c.close(); return }
      const n = Math.min(chunk.length, total - sent)
      c.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n))
      sent += n
    }
  })
}

async function drain (res: Response): Promise<number> {
  let n = 0
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) n += c.length
  return n
}

/** What the upstream recorded of the one request that carried this x-request-id. */
function receivedFor (id: string): Received | undefined {
  return up.received.find((r) => r.headers['x-request-id'] === id)
}

t.test('a 50 MB chunked body streams through to the upstream and back', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 60000000 }`, up.url)
  t.teardown(sc.close)
  const size = 50 * 1024 * 1024
  const id = 'stream-50mb'
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { origin: APP, 'x-request-id': id }, body: generated(size), duplex: 'half' } as RequestInit)
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal(await drain(res), size)
  t.equal(receivedFor(id)?.bytes, size, 'the upstream received all of this request\'s body')
})

t.test('a chunked body over limits.maxBodyBytes is cut off with 413 while it streams', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 1000000 }`, up.url)
  t.teardown(sc.close)
  const id = 'stream-over-limit'
  // The sidecar answers as soon as the limit is passed and reads (and drops) the rest of the body
  // before it closes (a lingering close), so the client always gets the answer, never a reset.
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { origin: APP, 'x-request-id': id }, body: generated(5_000_000), duplex: 'half' } as RequestInit)
  t.equal(res.status, 413)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal(res.headers.get('connection'), 'close')
  t.equal((await res.json() as { error: { code: string } }).error.code, 'payload_too_large')
  const rec = receivedFor(id)
  t.ok(rec !== undefined, 'the request had been forwarded while it streamed')
  t.ok((rec?.bytes ?? Infinity) <= 1_000_000 + 65536, `the upstream never got more than the limit (${rec?.bytes})`)
})

t.test('a declared Content-Length over the limit is refused before anything is forwarded', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 1000 }`, up.url)
  t.teardown(sc.close)
  const before = up.received.length
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: 'x'.repeat(2000) })
  t.equal(res.status, 413)
  t.equal(res.headers.get('connection'), 'close')
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal(up.received.length, before)
  const small = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1000) })
  t.equal(small.status, 200)
})

t.test('a slow upstream is waited for; one slower than requestTimeout gives 504', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nupstream: { requestTimeout: 1s }`, up.url)
  t.teardown(sc.close)
  const slow = await fetch(`${sc.url}/slow`, { method: 'POST', body: 'x' })
  t.equal(slow.status, 200)
  t.same(await slow.json(), { slow: true })
  const hang = await fetch(`${sc.url}/hang`, { method: 'POST', headers: { origin: APP }, body: 'x' })
  t.equal(hang.status, 504)
  t.equal(hang.headers.get('access-control-allow-origin'), APP)
  t.equal((await hang.json() as { error: { code: string } }).error.code, 'upstream_timeout')
})

t.test('an upstream that refuses connections gives 502 upstream_unavailable', async (t) => {
  // Take a free port and release it, so nothing listens there.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const sc = await startSidecar(ROUTES, `http://127.0.0.1:${port}`)
  t.teardown(sc.close)
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: APP }, body: '{}' })
  t.equal(res.status, 502)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal((await res.json() as { error: { code: string } }).error.code, 'upstream_unavailable')
})

t.test('a body that is not JSON, or has no content type, is forwarded byte for byte', async (t) => {
  const sc = await startSidecar(ROUTES, up.url)
  t.teardown(sc.close)
  const bytes = new Uint8Array([0, 1, 2, 255, 254])
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/x-weird' }, body: bytes })
  t.same(new Uint8Array(await res.arrayBuffer()), bytes)
  const bad = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })
  t.equal(await bad.text(), '{not json', 'malformed JSON is the upstream\'s to judge')
})

t.test('an early 413 reads and drops the rest of the body, then closes without a reset (lingering close)', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 1000 }`, up.url)
  t.teardown(sc.close)
  const { hostname, port } = new URL(sc.url)
  // Half-open, as a browser still uploading is: the sidecar's FIN after its answer must not stop us.
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true })
  t.teardown(() => { socket.destroy() })
  let received = ''
  let error: Error | undefined
  socket.on('data', (c: Buffer) => { received += c.toString() })
  socket.on('error', (err) => { error = err })
  const ended = new Promise<void>((resolve) => socket.once('end', resolve))
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  const piece = 'x'.repeat(16384)
  socket.write(`POST /process/text HTTP/1.1\r\nHost: sidecar.test\r\nOrigin: ${APP}\r\nContent-Length: 400000\r\n\r\n${piece}`)
  // The answer comes before the body: go on sending the body, as a browser uploading a file does.
  while (!received.includes('\r\n\r\n')) await new Promise((resolve) => setTimeout(resolve, 10))
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) => socket.write(piece, (err) => { if (err) reject(err); else resolve() }))
  }
  socket.end()
  await ended
  await new Promise<void>((resolve) => { if (socket.closed) resolve(); else socket.once('close', () => resolve()) })
  t.match(received, /^HTTP\/1\.1 413 /, 'the 413 arrived')
  t.match(received, /"code":"payload_too_large"/)
  t.match(received, /\r\nconnection: close\r\n/i)
  t.equal(error, undefined, 'no reset: the body sent after the answer was read and dropped')
})

t.test('a small chunked body that arrived whole while queued is forwarded, not timed out as idle', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nupstream: { maxConcurrent: 1, queue: { size: 4, timeout: 5s } }\nlimits: { bodyIdleTimeout: 150ms }`, up.url)
  t.teardown(sc.close)
  // /slow holds the one slot for 300 ms, longer than bodyIdleTimeout.
  const first = fetch(`${sc.url}/slow`, { method: 'POST', body: 'x' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  // node:http sends a body written in pieces, without Content-Length, chunked.
  const queued = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${sc.url}/echo`, { method: 'POST', headers: { 'x-request-id': 'queued-chunked' } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode as number, body }))
    })
    req.on('error', reject)
    req.write('{"text":')
    req.end('["queued"]}')
  })
  t.equal(queued.status, 200)
  t.equal(queued.body, '{"text":["queued"]}', 'the whole body came through')
  t.equal((await first).status, 200)
  // Whole before it was admitted, so undici knew its length.
  t.equal(receivedWith(up, 'queued-chunked')?.bytes, 19, 'the upstream got all of it')
})
