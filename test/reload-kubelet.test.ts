// File mode against the kubelet's exact ConfigMap update sequence (AtomicWriter): a new timestamped
// directory, a `..data_tmp` symlink to it, rename over `..data`, the old directory removed; all under
// steady load. The new policy must apply within a bounded time, no request may fail, and a request in
// flight finishes on the snapshot it started with.
import t from 'tap'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { openFileSource } from '../sidecar/config/file-source.ts'
import { loadConfigText } from '../sidecar/config/load.ts'
import { watchConfigFile } from '../sidecar/config/watch.ts'
import { serve, type Running } from '../sidecar/server.ts'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'

const OLD = 'https://old.example.com'
const NEW = 'https://new.example.com'
const config = (origin: string, extra = ''): string => `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
cors: { allowedOrigins: [${origin}] }
routes: [{ path: /process/text, methods: [POST] }, { path: /slow, methods: [POST] }]
shutdown: { delay: 0s }
${extra}`

/** A ConfigMap volume as the kubelet lays it out, and its update step by step. */
class ConfigMapVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'pai-configmap-'))
  #version = 0
  #current = ''
  constructor (text: string) {
    this.#current = this.#writeVersion(text)
    symlinkSync(this.#current, join(this.dir, '..data'))
    symlinkSync(join('..data', 'config.yaml'), join(this.dir, 'config.yaml'))
  }

  get file (): string { return join(this.dir, 'config.yaml') }

  #writeVersion (text: string): string {
    const name = `..2026_11_28_12_00_00.${++this.#version}`
    mkdirSync(join(this.dir, name))
    writeFileSync(join(this.dir, name, 'config.yaml'), text)
    return name
  }

  /** kubelet's AtomicWriter: new dir, `..data_tmp` → new dir, rename over `..data`, remove old dir. */
  update (text: string): void {
    const next = this.#writeVersion(text)
    symlinkSync(next, join(this.dir, '..data_tmp'))
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'))
    rmSync(join(this.dir, this.#current), { recursive: true })
    this.#current = next
  }

  remove (): void { rmSync(this.dir, { recursive: true, force: true }) }
}

async function start (volume: ConfigMapVolume, up: Upstream, lines: string[]): Promise<Running> {
  const opened = await openFileSource(volume.file)
  if (!opened.ok) throw new Error(opened.errors.join('\n'))
  const loaded = loadConfigText(opened.source.text, opened.source.name, { upstream: up.url })
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'))
  return serve(loaded.snapshot, {
    version: 't',
    overrides: { upstream: up.url },
    source: opened.source,
    destination: new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })
  })
}

const post = (url: string, origin: string, path = '/process/text') =>
  fetch(`${url}${path}`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: '{"text":["x"]}' })

t.test('the kubelet update sequence under load: applied within a bounded time, zero failed requests', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const volume = new ConfigMapVolume(config(OLD))
  t.teardown(() => volume.remove())
  const lines: string[] = []
  const r = await start(volume, up, lines)
  t.teardown(async () => { r.shutdown('test'); await r.done })

  // Steady load from both origins; a "failure" is anything but the policy's 200 or 403.
  let stop = false
  const seen = { requests: 0, failures: [] as string[] }
  const loop = async (): Promise<void> => {
    while (!stop) {
      for (const origin of [OLD, NEW]) {
        seen.requests++
        try {
          const res = await post(r.publicUrl, origin)
          await res.arrayBuffer()
          if (res.status !== 200 && res.status !== 403) seen.failures.push(`${origin}: ${res.status}`)
        } catch (err) {
          seen.failures.push(`${origin}: ${String(err)}`)
        }
      }
    }
  }
  const loops = Array.from({ length: 8 }, loop)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal((await post(r.publicUrl, NEW)).status, 403, 'before: the new origin is refused')

  // A slow request from the old origin starts before the update and must finish under the old policy.
  const inflight = post(r.publicUrl, OLD, '/slow')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const updated = performance.now()
  volume.update(config(NEW))
  let appliedMs: number | undefined
  while (performance.now() - updated < 5000) {
    if ((await post(r.publicUrl, NEW)).status === 200) { appliedMs = performance.now() - updated; break }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const slow = await inflight
  await new Promise((resolve) => setTimeout(resolve, 500))
  stop = true
  await Promise.all(loops)

  t.ok(appliedMs !== undefined && appliedMs < 2000, `the new policy applied ${appliedMs?.toFixed(0)} ms after the rename (bound 2000 ms)`)
  t.equal((await post(r.publicUrl, OLD)).status, 403, 'after: the old origin is refused')
  t.equal(slow.status, 200, 'the in-flight request finished on the snapshot it started with')
  t.equal(slow.headers.get('access-control-allow-origin'), OLD)
  t.same(seen.failures, [], `no failed request among ${seen.requests}`)
  const metrics = await (await fetch(`${r.adminUrl}/metrics`)).text()
  t.match(metrics, /^pai_sidecar_config_reloads_total\{result="success"\} 1$/m)
  t.match(metrics, /^pai_sidecar_config_generation 2$/m)
  t.comment(`kubelet-sequence reload: applied after ${appliedMs?.toFixed(0)} ms; ${seen.requests} requests during the test, ${seen.failures.length} failed`)
})

t.test('an invalid update keeps the last good policy, is counted and shown in /readyz, and stays ready', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const volume = new ConfigMapVolume(config(OLD))
  t.teardown(() => volume.remove())
  const lines: string[] = []
  const r = await start(volume, up, lines)
  t.teardown(async () => { r.shutdown('test'); await r.done })

  volume.update(config('"https://*.com"', 'upstream: { url: http://127.0.0.1:1 }'))
  const deadline = performance.now() + 3000
  let ready: { status: number; body: { checks: { config: { lastReload: { result: string; errors: string[]; pendingRestart: string[] } } } } } | undefined
  while (performance.now() < deadline) {
    const res = await fetch(`${r.adminUrl}/readyz`)
    ready = { status: res.status, body: await res.json() as never }
    if (ready.body.checks.config.lastReload.result === 'failure') break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(ready?.status, 200, 'still ready: the last good configuration serves')
  t.match(ready?.body.checks.config.lastReload.errors, [/^cors\.allowedOrigins\[0\]: "https:\/\/\*\.com" is a wildcard over a public suffix/])
  t.equal((await post(r.publicUrl, OLD)).status, 200, 'the old policy still applies')
  t.match(await (await fetch(`${r.adminUrl}/metrics`)).text(), /^pai_sidecar_config_reloads_total\{result="failure"\} 1$/m)
  t.match(lines.join(''), /"msg":"configuration rejected: the last good configuration still serves"/)

  // A file that briefly cannot be read (removed mid-swap) is a warning, not a reload.
  rmSync(join(volume.dir, 'config.yaml'))
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.match(lines.join(''), /"code":"ENOENT".*"msg":"configuration file not readable; keeping the last good configuration"/)
  t.equal((await post(r.publicUrl, OLD)).status, 200)
})

t.test('the periodic content check catches a change whose events were missed', async (t) => {
  const volume = new ConfigMapVolume('a: 1\n')
  t.teardown(() => volume.remove())
  const texts: string[] = []
  // A debounce far beyond the test: only the poll can notice the change in time.
  const w = watchConfigFile({ path: volume.file, initialText: 'a: 1\n', debounceMs: 60_000, pollMs: 50, onChange: (text) => { texts.push(text) }, onError: () => {} })
  t.teardown(w.stop)
  volume.update('a: 2\n')
  const deadline = performance.now() + 2000
  while (texts.length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  // Later checks find the same content: nothing more is reported.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(texts, ['a: 2\n'])
})
