// What the metrics say after real traffic through the real app, and how they are exposed.
import t from 'tap'
import { Registry } from 'prom-client'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { sample } from './fixtures/metrics.ts'
import { createMetrics, exposition, OPENMETRICS_TEXT, PROMETHEUS_TEXT, statusClass } from '../sidecar/metrics.ts'

const APP = 'https://app.example.com'
const CONFIG = `
cors:
  allowedOrigins: [${APP}, "https://*.example.com"]
routes:
  - { path: /process/text, methods: [POST] }
  - { path: /echo, methods: [POST] }
  - { path: /reset, methods: [POST] }
  - { path: /hang, methods: [POST] }
upstream: { requestTimeout: 300ms }
`

let up: Upstream
let sc: TestSidecar
t.before(async () => {
  up = await startUpstream()
  sc = await startSidecar(CONFIG, up.url)
})
t.teardown(async () => { await sc.close(); await up.close() })

const value = (name: string, labels: Record<string, string> = {}): Promise<number | undefined> =>
  sample(sc.metrics.registry.getSingleMetric(name), labels)

t.test('requests are counted by configured route, method, status class, CORS outcome and allowlist entry', async (t) => {
  await fetch(`${sc.url}/process/text?email=jane@example.com`, { method: 'POST', headers: { origin: 'https://a.example.com', 'content-type': 'application/json' }, body: '{"text":["x"]}' })
  await fetch(`${sc.url}/process/text`, { method: 'POST', body: '{}' })
  await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: 'https://evil.example' }, body: '{}' })
  await fetch(`${sc.url}/no/such/path`, { headers: { origin: APP } })
  t.equal(await value('pai_sidecar_requests_total', { route: '/process/text', method: 'POST', status_class: '2xx', cors: 'allowed', cors_entry: 'https://*.example.com' }), 1)
  t.equal(await value('pai_sidecar_requests_total', { route: '/process/text', status_class: '2xx', cors: 'none', cors_entry: '' }), 1)
  t.equal(await value('pai_sidecar_requests_total', { route: '/process/text', status_class: '4xx', cors: 'denied' }), 1)
  t.equal(await value('pai_sidecar_requests_total', { route: '(unmatched)', method: 'GET', status_class: '4xx', cors: 'allowed', cors_entry: APP }), 1)
  t.equal(await value('pai_sidecar_cors_denials_total', { reason: 'origin_not_allowed', kind: 'request' }), 1)
  t.equal(await value('pai_sidecar_request_duration_seconds', { route: '/process/text', le: '+Inf', status_class: '2xx', method: 'POST' }), 2)
  t.equal(await value('pai_sidecar_upstream_duration_seconds', { route: '/process/text', le: '+Inf', status_class: '2xx' }), 2)
  const text = (await exposition(sc.metrics.registry, undefined)).body
  t.notMatch(text, /evil|jane|no\/such/, 'no raw origin, query or path in any label')
})

t.test('preflights are counted by result and entry, denials by reason', async (t) => {
  const pf = (origin: string, method = 'POST', headers = 'content-type') => fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } })
  await pf(APP)
  await pf(APP)
  await pf(APP, 'DELETE')
  await pf(APP, 'POST', 'authorization')
  await pf('null')
  t.equal(await value('pai_sidecar_preflights_total', { result: 'allowed', cors_entry: APP }), 2)
  t.equal(await value('pai_sidecar_preflights_total', { result: 'denied', cors_entry: APP }), 2)
  t.equal(await value('pai_sidecar_preflights_total', { result: 'denied', cors_entry: '' }), 1)
  t.equal(await value('pai_sidecar_cors_denials_total', { reason: 'method_not_allowed', kind: 'preflight' }), 1)
  t.equal(await value('pai_sidecar_cors_denials_total', { reason: 'header_not_allowed', kind: 'preflight' }), 1)
  t.equal(await value('pai_sidecar_cors_denials_total', { reason: 'null_origin', kind: 'preflight' }), 1)
  t.equal(await value('pai_sidecar_requests_total', { method: 'OPTIONS' }), undefined, 'preflights are not in requests_total')
})

t.test('body bytes both ways, declared or counted as they stream', async (t) => {
  await fetch(`${sc.url}/echo`, { method: 'POST', body: 'x'.repeat(1000) })
  const chunked = new ReadableStream({ start (c) { c.enqueue(new Uint8Array(500)); c.enqueue(new Uint8Array(300)); c.close() } })
  const res = await fetch(`${sc.url}/echo`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit)
  t.equal((await res.arrayBuffer()).byteLength, 800)
  t.equal(await value('pai_sidecar_request_body_bytes_total', { route: '/echo' }), 1800)
  t.equal(await value('pai_sidecar_response_body_bytes_total', { route: '/echo' }), 1800)
  const line = sc.logs.filter((l) => l.route === '/echo').at(-1)
  t.match(line, { bytesIn: 800, bytesOut: 800, upstreamStatus: 200 })
  t.type(line?.upstreamMs, 'number')
})

t.test('upstream errors are counted by kind; in-flight gauges return to zero', async (t) => {
  await fetch(`${sc.url}/reset`, { method: 'POST', body: 'x' })
  await fetch(`${sc.url}/hang`, { method: 'POST', body: 'x' })
  t.equal(await value('pai_sidecar_upstream_errors_total', { kind: 'reset' }), 1)
  t.equal(await value('pai_sidecar_upstream_errors_total', { kind: 'timeout' }), 1)
  t.equal(await value('pai_sidecar_upstream_errors_total', { kind: 'connect' }), 0, 'every kind is exported from the start')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await value('pai_sidecar_in_flight_requests'), 0)
  t.equal(await value('pai_sidecar_upstream_in_flight_requests'), 0)
})

t.test('allowed preflights log at debug, denied ones at info', async (t) => {
  const quiet = await startSidecar(CONFIG, up.url, 'info')
  t.teardown(quiet.close)
  await fetch(`${quiet.url}/process/text`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } })
  await fetch(`${quiet.url}/process/text`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  const lines = quiet.logs.filter((l) => l.msg === 'request')
  t.equal(lines.length, 1)
  t.match(lines[0], { preflight: true, cors: 'denied', corsReason: 'origin_not_allowed' })
})

t.test('the exposition is Prometheus text by default and OpenMetrics when asked, and one never spoils the other', async (t) => {
  const registry = new Registry()
  const m = createMetrics(registry, { version: '9.9.9', config: () => ({ hash: 'abc123', generation: 3 }) })
  m.requests.inc({ route: '/r', method: 'POST', status_class: '2xx', cors: 'none', cors_entry: '' })
  const prom = await exposition(registry, 'text/plain')
  t.equal(prom.contentType, PROMETHEUS_TEXT)
  t.match(prom.body, /^# TYPE pai_sidecar_requests_total counter$/m)
  t.match(prom.body, /^pai_sidecar_build_info\{version="9\.9\.9",node_version="v\d+\.\d+\.\d+"\} 1$/m)
  t.match(prom.body, /^pai_sidecar_config_info\{hash="abc123"\} 1$/m)
  t.match(prom.body, /^pai_sidecar_config_generation 3$/m)
  t.match(prom.body, /^pai_sidecar_nodejs_eventloop_lag_seconds /m)
  t.match(prom.body, /^pai_sidecar_process_resident_memory_bytes /m)
  const [om, again] = await Promise.all([
    exposition(registry, 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'),
    exposition(registry, undefined)
  ])
  t.equal(om.contentType, OPENMETRICS_TEXT)
  t.match(om.body, /^# TYPE pai_sidecar_requests counter$/m)
  t.match(om.body, /^pai_sidecar_requests_total\{/m)
  t.match(om.body, /# EOF\n$/)
  t.match(again.body, /^# TYPE pai_sidecar_requests_total counter$/m, 'a concurrent Prometheus scrape keeps _total')
  t.match((await exposition(registry, undefined)).body, /^pai_sidecar_requests_total\{/m, 'and so does the next one')
})

t.test('status classes', async (t) => {
  t.same([101, 204, 302, 404, 503].map(statusClass), ['1xx', '2xx', '3xx', '4xx', '5xx'])
})
