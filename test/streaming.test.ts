// Bodies stream both ways without buffering; limits and upstream failures map to precise statuses.
import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'
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

t.test('a 50 MB chunked body streams through to the upstream and back', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 60000000 }`, up.url)
  t.teardown(sc.close)
  const size = 50 * 1024 * 1024
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { origin: APP }, body: generated(size), duplex: 'half' } as RequestInit)
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), APP)
  t.equal(await drain(res), size)
  t.equal(up.received.at(-1)?.bytes, size)
})

t.test('a chunked body over limits.maxBodyBytes is cut off with 413 while it streams', async (t) => {
  const sc = await startSidecar(`${ROUTES}\nlimits: { maxBodyBytes: 1000000 }`, up.url)
  t.teardown(sc.close)
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', headers: { origin: APP }, body: generated(5_000_000), duplex: 'half' } as RequestInit)
    .catch((err: Error) => err)
  // The sidecar answers 413 and closes; depending on timing the client may see the answer or the reset.
  if (res instanceof Response) {
    t.equal(res.status, 413)
    t.equal(res.headers.get('access-control-allow-origin'), APP)
    t.equal((await res.json() as { error: { code: string } }).error.code, 'payload_too_large')
  } else {
    t.pass('connection closed while uploading')
  }
  t.ok((up.received.at(-1)?.bytes ?? 0) <= 1_000_000 + 65536, 'the upstream never got more than the limit')
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
