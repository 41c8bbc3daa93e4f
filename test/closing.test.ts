// Once the listener closes, a request that still arrives on a kept-alive connection is refused
// cleanly, so the client reconnects to another pod instead of waiting on one that is going away.
import t from 'tap'
import { Writable } from 'node:stream'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'

t.test('while closing, requests get 503 shutting_down with Connection: close and Retry-After', async (t) => {
  let closing = false
  const store = new ConfigStore(snapshot('cors: { allowedOrigins: [https://app.example.com] }'))
  const app = await buildPublicApp({ store, metrics: testMetrics(store), closing: () => closing, logger: createLogger('silent', new Writable({ write (_c, _e, cb) { cb() } })) })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/nowhere' })).statusCode, 404)
  closing = true
  const res = await app.inject({ url: '/', headers: { origin: 'https://app.example.com' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().error.code, 'shutting_down')
  t.equal(res.headers.connection, 'close')
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com', 'readable by the page, not an opaque CORS error')
  t.equal(res.headers.vary, 'Origin')
})
