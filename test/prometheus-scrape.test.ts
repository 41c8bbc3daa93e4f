// A real Prometheus (Debian's package) scrapes the real admin endpoint; its HTTP API must then show
// the series the traffic produced. promtool lints the exposition. CI installs both (.ci/run).
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { serve } from '../sidecar/server.ts'
import { startUpstream } from './fixtures/upstream.ts'
import { snapshot } from './fixtures/sidecar.ts'

const PROMETHEUS = '/usr/bin/prometheus'
const PROMTOOL = '/usr/bin/promtool'
// Without the binaries a developer's run skips these; CI has them, so there they must run.
const missing = !existsSync(PROMETHEUS) || !existsSync(PROMTOOL)
if (missing && process.env.CI !== undefined) throw new Error('CI must install Debian\'s prometheus package (see .ci/run)')
const skip = missing ? 'prometheus/promtool not installed (apt-get install prometheus)' : false

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

t.test('Prometheus scrapes the admin port and sees what the traffic did', { skip }, async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const r = await serve(snapshot(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
cors: { allowedOrigins: [https://app.example.com] }
routes: [{ path: /process/text, methods: [POST] }]
shutdown: { delay: 0s }
`, up.url), { version: '1.2.3', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  t.teardown(async () => { r.shutdown('test'); await r.done })

  const post = (origin: string) => fetch(`${r.publicUrl}/process/text`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: '{"text":["hello"]}' })
  for (let i = 0; i < 5; i++) await post('https://app.example.com')
  for (let i = 0; i < 2; i++) await post('https://evil.example')
  await fetch(`${r.publicUrl}/process/text`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } })

  const dir = mkdtempSync(join(tmpdir(), 'pai-prometheus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const admin = new URL(r.adminUrl)
  writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: pai-sidecar
    static_configs: [{ targets: ['${admin.host}'] }]
`)
  const port = await freePort()
  const prom = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'
  ], { stdio: 'ignore' })
  t.teardown(() => { prom.kill('SIGKILL') })

  const query = async (q: string): Promise<number | undefined> => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)
      const body = await res.json() as { data: { result: { value: [number, string] }[] } }
      const v = body.data.result[0]?.value[1]
      return v === undefined ? undefined : Number(v)
    } catch {
      return undefined // not listening yet
    }
  }
  const end = Date.now() + 30_000
  while (await query('up{job="pai-sidecar"}') !== 1 || await query('sum(pai_sidecar_requests_total)') === undefined) {
    if (Date.now() > end) throw new Error('Prometheus did not scrape the sidecar within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.equal(await query('sum(pai_sidecar_requests_total{route="/process/text",cors="allowed",status_class="2xx"})'), 5)
  t.equal(await query('sum(pai_sidecar_requests_total{cors="denied",status_class="4xx"})'), 2)
  t.equal(await query('sum(pai_sidecar_cors_denials_total{reason="origin_not_allowed",kind="request"})'), 2)
  t.equal(await query('sum(pai_sidecar_preflights_total{result="allowed",cors_entry="https://app.example.com"})'), 1)
  t.equal(await query('sum(pai_sidecar_request_duration_seconds_count{route="/process/text"})'), 7)
  t.equal(await query('sum(pai_sidecar_upstream_duration_seconds_count)'), 5)
  t.equal(await query('pai_sidecar_upstream_up'), 1)
  t.equal(await query('count(pai_sidecar_build_info{version="1.2.3"})'), 1)
  t.ok((await query('pai_sidecar_process_resident_memory_bytes') ?? 0) > 0, 'process metrics are scraped too')
})

t.test('promtool check metrics accepts the exposition', { skip }, async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const r = await serve(snapshot('server: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nshutdown: { delay: 0s }', up.url),
    { version: '1.2.3', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  t.teardown(async () => { r.shutdown('test'); await r.done })
  await fetch(`${r.publicUrl}/`)
  const exposition = await (await fetch(`${r.adminUrl}/metrics`)).text()
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, output: stdout + stderr })
    })
    child.stdin?.end(exposition)
  })
  t.equal(code, 0, output)
  t.equal(output.trim(), '', 'no lint warnings')
})
