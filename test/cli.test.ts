// The command line as a user meets it: --check-config, explain, serving and stopping.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { run, USAGE } from '../sidecar/cli/run.ts'
import type { Running } from '../sidecar/server.ts'
import { startUpstream } from './fixtures/upstream.ts'

function io () {
  const out: string[] = []
  const err: string[] = []
  let running: Running | undefined
  return {
    io: { out: (s: string) => { out.push(s) }, err: (s: string) => { err.push(s) }, started: (r: Running) => { running = r } },
    out: () => out.join(''),
    err: () => err.join(''),
    running: () => running as Running
  }
}

const dir = t.testdir({
  'good.yaml': 'cors:\n  allowedOrigins: [https://app.example.com, "https://*.example.com"]\n',
  'bad.yaml': 'cors:\n  allowedOrigins: [https://app.example.com, "https://*.com", "*"]\n  allowCredentials: true\n  allowedOrigin: []\n',
  'serve.yaml': 'server: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nshutdown: { delay: 0s, timeout: 2s }\nlog: { level: silent }\n',
  reloading: { 'config.yaml': 'server: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nshutdown: { delay: 0s }\nlog: { level: silent }\n' }
})

t.test('--check-config accepts a valid file and exits 0', async (t) => {
  const c = io()
  t.equal(await run(['--check-config', `${dir}/good.yaml`], {}, c.io), 0)
  t.match(c.out(), /good\.yaml: configuration valid \(hash [0-9a-f]{12}\)/)
  const d = io()
  t.equal(await run(['--check-config', '--config', `${dir}/good.yaml`], {}, d.io), 0)
  const e = io()
  t.equal(await run(['--check-config'], { PAI_SIDECAR_CONFIG: `${dir}/good.yaml` }, e.io), 0)
  const f = io()
  t.equal(await run(['--check-config'], {}, f.io), 0, 'the built-in defaults are valid')
  t.match(f.out(), /^defaults: configuration valid/)
})

t.test('--check-config lists every problem with its path and exits 2', async (t) => {
  const c = io()
  t.equal(await run(['--check-config', `${dir}/bad.yaml`], {}, c.io), 2)
  t.match(c.err(), /configuration invalid \(3 problems\)/)
  t.match(c.err(), /cors\.allowedOrigin: unknown field \(did you mean "allowedOrigins"\?\)/)
  t.match(c.err(), /cors\.allowedOrigins\[1\]: "https:\/\/\*\.com" is a wildcard over a public suffix/)
  t.match(c.err(), /cors\.allowedOrigins\[2\]: "\*" with allowCredentials: true is refused/)
  const d = io()
  t.equal(await run(['--check-config', `${dir}/missing.yaml`], {}, d.io), 2)
  t.match(d.err(), /missing\.yaml: cannot read the file \(ENOENT\)/)
  const e = io()
  // Schema-valid but insecure: all of the rule violations at once.
  t.equal(await run(['--check-config', '--allow-origin', 'https://*.com', '--allow-origin', 'null'], {}, e.io), 2)
  t.match(e.err(), /configuration invalid \(2 problems\)/)
  t.match(e.err(), /cors\.allowedOrigins\[0\]: "https:\/\/\*\.com" is a wildcard over a public suffix/)
  t.match(e.err(), /cors\.allowedOrigins\[1\]: "null"/)
})

t.test('help, version, and usage errors', async (t) => {
  const h = io()
  t.equal(await run(['--help'], {}, h.io), 0)
  t.equal(h.out(), USAGE)
  const v = io()
  t.equal(await run(['--version'], {}, v.io, '1.2.3'), 0)
  t.equal(v.out(), '1.2.3\n')
  for (const argv of [['--nope'], ['frobnicate'], ['--port', 'eighty'], ['--admin-port', '70000'], ['explain', '--json']]) {
    const c = io()
    t.equal(await run(argv, {}, c.io), 64, argv.join(' '))
    t.not(c.err(), '')
  }
})

t.test('explain prints the decision, the failed checks and the exact headers', async (t) => {
  const c = io()
  const code = await run(['explain', '--config', `${dir}/good.yaml`, '--origin', 'https://x.example.com', '--method', 'PUT', '--header', 'authorization', '--path', '/process/text'], {}, c.io)
  t.equal(code, 1, 'a denied request exits 1')
  t.match(c.out(), /origin: allowed by allowedOrigins entry "https:\/\/\*\.example\.com"/)
  t.match(c.out(), /✗ method_not_allowed: PUT is not in allowedMethods/)
  t.match(c.out(), /✗ header_not_allowed: authorization is not in allowedHeaders/)
  t.match(c.out(), /Hint: to allow it, add "PUT" to cors\.allowedMethods/)

  const ok = io()
  t.equal(await run(['explain', '--origin', 'http://localhost:5173', '--method', 'POST', '--header', 'content-type', '--json'], { PAI_SIDECAR_ALLOW_ORIGINS: 'http://localhost:5173, https://b.example.com' }, ok.io), 0)
  const parsed = JSON.parse(ok.out()) as { verdict: string; preflight: { status: number; decision: { headers: Record<string, string> } } }
  t.equal(parsed.verdict, 'allowed')
  t.equal(parsed.preflight.status, 204)
  t.equal(parsed.preflight.decision.headers['access-control-allow-origin'], 'http://localhost:5173')

  // A page served by the sidecar's own host: without --self-origin a foreign origin, with it same-origin.
  const foreign = io()
  t.equal(await run(['explain', '--config', `${dir}/good.yaml`, '--origin', 'https://api.elsewhere.test', '--method', 'POST', '--path', '/process/text'], {}, foreign.io), 1)
  const same = io()
  t.equal(await run(['explain', '--config', `${dir}/good.yaml`, '--origin', 'https://api.elsewhere.test', '--self-origin', 'https://api.elsewhere.test', '--method', 'POST', '--path', '/process/text', '--json'], {}, same.io), 0, '--self-origin: allowed, as live traffic treats it')
  t.match(JSON.parse(same.out()), { verdict: 'allowed', actual: { status: undefined, decision: { outcome: 'same_origin' } } })

  const simple = io()
  t.equal(await run(['explain', '--config', `${dir}/good.yaml`, '--origin', 'https://app.example.com'], {}, simple.io), 0, 'a GET with no extra headers: no preflight')
  t.match(simple.out(), /Request: GET \(any path\) from origin https:\/\/app\.example\.com/)
  t.match(simple.out(), /Preflight: not needed/)

  const bad = io()
  t.equal(await run(['explain', '--config', `${dir}/bad.yaml`, '--origin', 'https://a.b'], {}, bad.io), 2, 'an invalid config is reported, not explained')
})

t.test('serve runs the sidecar until shutdown, then exits 0', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const c = io()
  const done = run(['--config', `${dir}/serve.yaml`, '--upstream', up.url, '--allow-origin', 'https://app.example.com'], {}, c.io)
  while (c.running() === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  const r = c.running()
  const res = await fetch(`${r.publicUrl}/`, { headers: { origin: 'https://app.example.com' } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.equal((await fetch(`${r.adminUrl}/readyz`)).status, 200)
  r.shutdown('test')
  t.equal(await done, 0)
})

t.test('the --config file is watched: an edit applies without a restart, the overrides still win', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const c = io()
  const file = `${dir}/reloading/config.yaml`
  const done = run(['--config', file, '--upstream', up.url, '--allow-origin', 'https://app.example.com'], {}, c.io)
  while (c.running() === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  const r = c.running()
  t.equal((await fetch(`${r.publicUrl}/late`)).status, 404)
  writeFileSync(file, `${readFileSync(file, 'utf8')}routes: [{ path: /late, methods: [GET] }]\ncors: { allowedOrigins: [https://ignored.example.com] }\n`)
  const deadline = Date.now() + 3000
  while ((await fetch(`${r.publicUrl}/late`)).status !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await fetch(`${r.publicUrl}/late`)).status, 200, 'the new route applies')
  const res = await fetch(`${r.publicUrl}/late`, { headers: { origin: 'https://app.example.com' } })
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com', '--allow-origin still wins over the file')
  r.shutdown('test')
  t.equal(await done, 0)
})

t.test('without --config the built-in defaults serve, and nothing is watched', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const c = io()
  const done = run(['--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--log-level', 'silent', '--upstream', up.url], {}, c.io)
  while (c.running() === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal((await fetch(`${c.running().publicUrl}/`)).status, 200, 'GET / is a default route')
  t.equal((await fetch(`${c.running().publicUrl}/`, { headers: { origin: 'https://app.example.com' } })).status, 403, 'no origin is allowed by default')
  // The default shutdown.delay is 5 s; a second signal skips it.
  c.running().shutdown('SIGTERM')
  c.running().shutdown('SIGINT')
  t.equal(await done, 1)
})

t.test('--standin starts the development stand-in and forwards to it', async (t) => {
  const c = io()
  const done = run(['--config', `${dir}/serve.yaml`, '--standin', '--allow-origin', 'https://app.example.com', '--port', '0'], {}, c.io)
  while (c.running() === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(c.err(), /development stand-in for the Private AI container; not the real product: http:\/\/127\.0\.0\.1:\d+/)
  const res = await fetch(`${c.running().publicUrl}/process/text`, { method: 'POST', headers: { origin: 'https://app.example.com', 'content-type': 'application/json' }, body: '{"text":["mail jane@example.com"]}' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-pai-standin'), 'true')
  t.match(await res.text(), /EMAIL_ADDRESS_1/)
  c.running().shutdown('test')
  t.equal(await done, 0)
  const bad = io()
  t.equal(await run(['--standin', '--allow-origin', 'null'], {}, bad.io), 2, 'an invalid config still stops the stand-in it started')
  const missing = io()
  t.equal(await run(['--config', `${dir}/nowhere.yaml`], {}, missing.io), 2, 'a config file that cannot be read stops the start')
  t.match(missing.err(), /nowhere\.yaml: cannot read the file \(ENOENT\)/)
  const invalid = io()
  t.equal(await run(['--config', `${dir}/bad.yaml`, '--standin'], {}, invalid.io), 2, 'an invalid config file stops the start (and the stand-in)')
  t.match(invalid.err(), /configuration invalid \(3 problems\)/)
})

t.test('--standin where the stand-in is absent (a built sidecar) is a usage error: its reason, exit 64', async (t) => {
  // The real loader, pointed where a build has no stand-in: its error is the one a built sidecar gives.
  const loader = await import('../sidecar/standin/server.ts')
  const absent = new URL('file:///nonexistent/test/standin/server.ts')
  const { run: runWithout } = await t.mockImport<typeof import('../sidecar/cli/run.ts')>('../sidecar/cli/run.ts', {
    '../sidecar/standin/server.ts': { ...loader, startStandin: async () => await (await loader.loadStandin(absent))() }
  })
  const c = io()
  t.equal(await runWithout(['--standin', '--allow-origin', 'https://app.example.com'], {}, c.io), 64)
  t.match(c.err(), /^--standin: the development stand-in is not part of this build \(no \/nonexistent\/test\/standin\/server\.ts\); it runs from a checkout/)
  t.equal(c.running(), undefined, 'nothing was started')
})

t.test('the executable prints its version and reports errors on stderr', async (t) => {
  const version = spawn(process.execPath, ['sidecar/main.ts', '--version'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  version.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  t.same(await once(version, 'exit'), [0, null])
  t.match(out, /^\d+\.\d+\.\d+\n$/)
  const bad = spawn(process.execPath, ['sidecar/main.ts', '--check-config', `${dir}/bad.yaml`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  bad.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
  t.same(await once(bad, 'exit'), [2, null])
  t.match(err, /cors\.allowedOrigin: unknown field/)
})

t.test('the executable serves, answers a preflight, and exits 0 on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['sidecar/main.ts', '--config', `${dir}/serve.yaml`, '--log-level', 'info', '--allow-origin', 'http://localhost:5173'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.setEncoding('utf8')
  const started = new Promise<string>((resolve) => {
    child.stdout.on('data', (s: string) => {
      stdout += s
      const m = /"publicUrl":"([^"]+)"/.exec(stdout)
      if (m !== null) resolve(m[1] as string)
    })
  })
  const url = await started
  const res = await fetch(`${url}/process/text`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  t.equal(res.status, 204)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(stdout, /"msg":"stopped"/)
})
