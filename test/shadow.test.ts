// The report-only policy (`shadow`): decided on every CORS request, never applied; disagreements
// are counted and logged, so an allowlist can be tightened by watching before enforcing.
import t from 'tap'
import { startUpstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

t.test('the shadow policy is evaluated and reported, never enforced', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
cors: { allowedOrigins: [https://app.example.com, https://legacy.example.com] }
shadow: { allowedOrigins: [https://app.example.com, https://new.example.com] }
routes: [{ path: /process/text, methods: [POST] }]
`, up.url)
  t.teardown(sc.close)
  const post = (origin?: string) => fetch(`${sc.url}/process/text`, { method: 'POST', headers: origin === undefined ? {} : { origin }, body: '{}' })
  t.equal((await post('https://app.example.com')).status, 200)
  t.equal((await post('https://legacy.example.com')).status, 200, 'allowed by the active policy, whatever the shadow says')
  t.equal((await post('https://new.example.com')).status, 403, 'refused by the active policy, whatever the shadow says')
  t.equal((await post()).status, 200)
  const pf = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: 'https://legacy.example.com', 'access-control-request-method': 'POST' } })
  t.equal(pf.status, 204)

  const values = (await sc.metrics.shadowDecisions.get()).values
  const count = (active: string, shadow: string) => values.find((v) => v.labels.active === active && v.labels.shadow === shadow)?.value
  t.equal(count('allowed', 'allowed'), 1)
  t.equal(count('allowed', 'denied'), 2, 'the legacy request and its preflight')
  t.equal(count('denied', 'allowed'), 1)
  t.equal(values.reduce((n, v) => n + v.value, 0), 4, 'requests without Origin are not CORS requests')
  const legacy = sc.logs.filter((l) => l.corsMatched === 'https://legacy.example.com' && l.msg === 'request' && l.preflight === false)
  t.match(legacy[0], { cors: 'allowed', shadow: 'denied', shadowReason: 'origin_not_allowed' })
  const agreed = sc.logs.find((l) => l.corsMatched === 'https://app.example.com')
  t.equal(agreed?.shadow, undefined, 'no shadow field when both policies agree')
})
