// /readyz follows the upstream's health, polled in the background; probes never wait on it.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { startHealthChecks } from '../sidecar/health.ts'
import { serve } from '../sidecar/server.ts'
import { snapshot } from './fixtures/sidecar.ts'

/** An upstream whose /healthz answers what the test says: a status, or nothing at all. */
async function controllable (): Promise<{ url: string; set: (s: number | 'hang') => void; server: Server }> {
  let answer: number | 'hang' = 200
  const server = createServer((req, res) => {
    if (answer === 'hang') return
    res.writeHead(answer).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, set: (s) => { answer = s }, server }
}

const until = async (cond: () => Promise<boolean> | boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('readiness and upstream_up follow the upstream health check', async (t) => {
  const up = await controllable()
  const lines: string[] = []
  const r = await serve(snapshot(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstream: { healthInterval: 50ms, healthTimeout: 100ms }
shutdown: { delay: 0s }
`, up.url), { version: '1.0.0', destination: new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } }) })
  t.teardown(async () => { r.shutdown('test'); await r.done })
  const ready = async () => (await fetch(`${r.adminUrl}/readyz`)).status === 200
  const metric = async () => /^pai_sidecar_upstream_up (\d)$/m.exec(await (await fetch(`${r.adminUrl}/metrics`)).text())?.[1]
  await until(ready)
  t.equal(await metric(), '1')

  up.set(503)
  await until(async () => !(await ready()))
  const body = await (await fetch(`${r.adminUrl}/readyz`)).json() as { checks: { upstream: { ok: boolean; detail: string; url: string } } }
  t.match(body.checks.upstream, { ok: false, detail: 'answered 503', url: `${up.url}/healthz` })
  t.equal(await metric(), '0')

  up.set('hang')
  await until(async () => /no answer within 100 ms/.test(await (await fetch(`${r.adminUrl}/readyz`)).text()))

  up.set(200)
  await until(ready)
  t.match(lines.join(''), /"msg":"upstream unhealthy"/)
  t.match(lines.join(''), /"msg":"upstream healthy"/)
  const om = await fetch(`${r.adminUrl}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })
  t.match(om.headers.get('content-type'), /application\/openmetrics-text/)
})

t.test('an unreachable upstream is unhealthy; a result older than three intervals is not trusted', async (t) => {
  const results: boolean[] = []
  const h = startHealthChecks({ url: 'http://127.0.0.1:9/healthz', intervalMs: 20, timeoutMs: 100, onResult: (ok) => { results.push(ok) } })
  await until(() => results.length > 0)
  t.equal(h.state.detail, 'unreachable')
  t.equal(h.healthy(), false)
  h.stop()

  const up = await controllable()
  const fresh = startHealthChecks({ url: `${up.url}/healthz`, intervalMs: 20, timeoutMs: 20, onResult: () => {} })
  await until(() => fresh.healthy())
  fresh.stop()
  await until(() => !fresh.healthy(), 1000)
  t.equal(fresh.state.ok, true, 'the last answer was fine, but it is too old')
})
