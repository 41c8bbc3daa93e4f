// server.trustProxy: X-Forwarded-* from the load balancer are believed, and passed on extended.
import t from 'tap'
import { receivedWith, startUpstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

t.test('behind a trusted proxy, X-Forwarded-* define the addressed origin and are extended', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar('server: { trustProxy: true }\nroutes: [{ path: /process/text, methods: [POST] }]', up.url)
  t.teardown(sc.close)
  // The load balancer appends: what the client sent itself stands further left and is ignored.
  const headers = { 'x-forwarded-for': '203.0.113.7, 10.0.0.2', 'x-forwarded-proto': 'http, https', 'x-forwarded-host': 'evil.example, api.example.com' }
  // The page is served by the same host the load balancer answers for: a same-origin request.
  const same = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...headers, origin: 'https://api.example.com' }, body: '{}' })
  t.equal(same.status, 200)
  const rec = receivedWith(up, same.headers.get('x-request-id'))
  t.equal(rec?.headers['x-forwarded-for'], '203.0.113.7, 10.0.0.2, 127.0.0.1', 'the chain is passed on, extended')
  t.equal(rec?.headers['x-forwarded-proto'], 'https')
  t.equal(rec?.headers['x-forwarded-host'], 'api.example.com')
  const other = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { ...headers, origin: 'http://api.example.com' }, body: '{}' })
  t.equal(other.status, 403, 'the scheme is part of the origin')
  const plain = await fetch(`${sc.url}/process/text`, { method: 'POST', body: '{}' })
  t.equal(plain.status, 200)
  t.equal(receivedWith(up, plain.headers.get('x-request-id'))?.headers['x-forwarded-proto'], 'http', 'without X-Forwarded-Proto the hop is plain http')
  t.equal(receivedWith(up, plain.headers.get('x-request-id'))?.headers['x-forwarded-host'], new URL(sc.url).host)
})

t.test('trustProxy as a hop count is accepted', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar('server: { trustProxy: 2 }\nroutes: [{ path: /process/text, methods: [POST] }]', up.url)
  t.teardown(sc.close)
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: 'https://api.example.com', 'x-forwarded-host': 'api.example.com', 'x-forwarded-proto': 'https' }, body: '{}' })
  t.equal(res.status, 200, 'same-origin behind two trusted hops')
})
