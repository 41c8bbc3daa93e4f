// Allowed preflights are answered from a precomputed response kept on the configuration snapshot
// (sidecar/http/preflight.ts), before fastify sees them: same status and headers as the gate's, a
// fresh request id each time, counted, logged at debug, bounded, and gone with a reload.
import t from 'tap'
import { request } from 'node:http'
import { Writable } from 'node:stream'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { preflightAnswer, PREFLIGHT_CACHE_SIZE } from '../sidecar/http/preflight.ts'
import { sample } from './fixtures/metrics.ts'
import { snapshot, startSidecar, testMetrics } from './fixtures/sidecar.ts'

const APP = 'https://app.example.com'
const POLICY = `
cors: { allowedOrigins: [${APP}], allowedHeaders: [content-type, x-a], maxAge: 600, allowPrivateNetwork: true }
shadow: { allowedOrigins: [https://other.example.com] }
routes: [{ path: /process/text, methods: [POST] }]
`

/** A raw preflight, so that the exact header lines and their order are visible. */
function preflight (url: string, headers: Record<string, string>): Promise<{ status: number; raw: string[]; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/process/text`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', ...headers } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode as number, raw: res.rawHeaders, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('an allowed preflight is answered from the cache with the gate\'s headers and its own request id', async (t) => {
  const sc = await startSidecar(POLICY, 'http://127.0.0.1:9', 'debug')
  t.teardown(sc.close)
  const first = await preflight(sc.url, { 'access-control-request-headers': 'content-type' })
  const second = await preflight(sc.url, { 'access-control-request-headers': 'content-type' })
  for (const r of [first, second]) {
    t.equal(r.status, 204)
    t.match(r.headers, {
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'content-type, x-a',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network',
      'content-length': '0'
    })
  }
  t.not(first.headers['x-request-id'], second.headers['x-request-id'], 'a request id per answer, not a cached one')
  t.equal((await preflight(sc.url, { 'x-request-id': 'pf-1' })).headers['x-request-id'], 'pf-1', 'a valid incoming id is kept')
  t.equal(await sample(sc.metrics.preflights, { result: 'allowed', cors_entry: APP }), 3, 'each one counted')
  t.equal(await sample(sc.metrics.shadowDecisions, { active: 'allowed', shadow: 'denied' }), 3, 'and compared with the shadow policy')
  const lines = sc.logs.filter((l) => l.msg === 'request' && l.preflight === true)
  t.equal(lines.length, 3, 'logged at debug')
  t.match(lines[2], { requestId: 'pf-1', method: 'OPTIONS', status: 204, cors: 'allowed', corsMatched: APP, shadow: 'denied', shadowReason: 'origin_not_allowed', level: 20 })
  const pna = await preflight(sc.url, { 'access-control-request-private-network': 'true' })
  t.equal(pna.headers['access-control-allow-private-network'], 'true', 'a different preflight, a different answer')
})

t.test('a denied or unusual preflight takes the ordinary path: our JSON 403, logged at info', async (t) => {
  const sc = await startSidecar(POLICY, 'http://127.0.0.1:9', 'info')
  t.teardown(sc.close)
  const denied = await preflight(sc.url, { 'access-control-request-headers': 'x-not-allowed', 'x-request-id': 'pf-denied' })
  t.equal(denied.status, 403)
  t.match(sc.logs.find((l) => l.requestId === 'pf-denied'), { status: 403, error: 'cors_preflight_denied', level: 30 })
  const allowed = await preflight(sc.url, { 'x-request-id': 'pf-quiet' })
  t.equal(allowed.status, 204)
  t.equal(sc.logs.find((l) => l.requestId === 'pf-quiet'), undefined, 'an allowed one is not logged at info')
})

t.test('the cache belongs to one snapshot and is bounded', async (t) => {
  const snap = snapshot(POLICY)
  const a = preflightAnswer(snap, APP, 'POST', 'content-type', undefined)
  t.equal(preflightAnswer(snap, APP, 'POST', 'content-type', undefined), a, 'the same answer object the second time')
  t.equal(preflightAnswer(snap, 'https://evil.example', 'POST', undefined, undefined), null, 'a denied preflight is not answered early')
  const reloaded = snapshot(POLICY)
  t.not(preflightAnswer(reloaded, APP, 'POST', 'content-type', undefined), a, 'a new snapshot starts with a new cache')
  // A client that varies its requested headers: past the bound, answers are computed and not kept.
  for (let i = 0; i < PREFLIGHT_CACHE_SIZE + 10; i++) preflightAnswer(snap, APP, 'POST', `x-a, x-${i}`, undefined)
  const late = preflightAnswer(snap, APP, 'POST', 'content-type, x-a', undefined)
  t.equal(late?.cors.outcome, 'allowed', 'still answered correctly')
  t.not(preflightAnswer(snap, APP, 'POST', 'content-type, x-a', undefined), late, 'beyond the bound, nothing more is kept')
  t.equal(preflightAnswer(snap, APP, 'POST', 'content-type', undefined), a, 'what was kept stays')
})

t.test('while draining, a preflight answered early ends its connection; a shadow that agrees adds nothing to its line', async (t) => {
  const store = new ConfigStore(snapshot(`cors: { allowedOrigins: [${APP}] }\nshadow: { allowedOrigins: [${APP}] }`))
  const logs: Record<string, unknown>[] = []
  const metrics = testMetrics(store)
  const app = await buildPublicApp({ store, metrics, draining: () => true, logger: createLogger('debug', new Writable({ write (c: Buffer, _e, cb) { logs.push(JSON.parse(c.toString())); cb() } })) })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const r = await preflight(url, { 'x-request-id': 'pf-drain' })
  t.equal(r.status, 204)
  t.equal(r.headers.connection, 'close')
  t.equal(await sample(metrics.shadowDecisions, { active: 'allowed', shadow: 'allowed' }), 1)
  const line = logs.find((l) => l.requestId === 'pf-drain')
  t.match(line, { status: 204, cors: 'allowed' })
  t.equal(line?.shadow, undefined, 'no shadow fields when both policies agree')
})
