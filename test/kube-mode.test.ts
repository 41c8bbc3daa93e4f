// Kubernetes mode end to end through the CLI: configuration from a ConfigMap via the (fake) API,
// changes applied live, an Event on the pod for every accepted or rejected change.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../sidecar/cli/run.ts'
import type { Running } from '../sidecar/server.ts'
import { startFakeKube, type FakeKube } from './fixtures/fake-kube.ts'
import { startUpstream } from './fixtures/upstream.ts'

const yaml = (origin: string, extra = ''): string => `server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
cors: { allowedOrigins: [${origin}] }
shutdown: { delay: 0s }
log: { level: warn }
${extra}`

function kubeconfig (dir: string, fake: FakeKube): string {
  const path = join(dir, 'kubeconfig')
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters: [{ name: fake, cluster: { server: "${fake.url}", insecure-skip-tls-verify: true } }]
users: [{ name: sidecar, user: { token: test } }]
contexts: [{ name: fake, context: { cluster: fake, user: sidecar, namespace: ${fake.namespace} } }]
current-context: fake
`)
  return path
}

function io () {
  const err: string[] = []
  let running: Running | undefined
  return {
    io: { out: () => {}, err: (s: string) => { err.push(s) }, started: (r: Running) => { running = r } },
    err: () => err.join(''),
    running: () => running
  }
}

const until = async (cond: () => Promise<boolean> | boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('the ConfigMap drives the policy; every change is applied live and recorded as an Event', async (t) => {
  const dir = t.testdir({})
  const fake = await startFakeKube()
  t.teardown(fake.close)
  const up = await startUpstream()
  t.teardown(up.close)
  fake.setConfigMap({ 'config.yaml': yaml('https://a.example.com') })
  const env = { KUBECONFIG: kubeconfig(dir, fake), POD_NAMESPACE: fake.namespace, POD_NAME: 'pai-0', POD_UID: 'uid-1' }
  const c = io()
  const done = run(['--config-source', 'kubernetes', '--configmap', fake.name, '--upstream', up.url], env, c.io)
  await until(() => c.running() !== undefined)
  const r = c.running() as Running
  const allowed = async (origin: string) => (await fetch(`${r.publicUrl}/`, { headers: { origin } })).status === 200
  t.ok(await allowed('https://a.example.com'))
  t.notOk(await allowed('https://b.example.com'))

  const started = performance.now()
  fake.setConfigMap({ 'config.yaml': yaml('https://b.example.com') })
  await until(() => allowed('https://b.example.com'))
  const latency = performance.now() - started
  t.ok(latency < 2000, `applied ${latency.toFixed(0)} ms after the ConfigMap changed`)
  await until(() => fake.events.length >= 1)
  t.match(fake.events[0], { type: 'Normal', reason: 'ConfigReloaded', action: 'Reload', regarding: { kind: 'Pod', name: 'pai-0', uid: 'uid-1' } })

  fake.setConfigMap({ 'config.yaml': yaml('"https://*.com"') })
  await until(() => fake.events.length >= 2)
  t.match(fake.events[1], { type: 'Warning', reason: 'ConfigRejected', note: /kept configuration [0-9a-f]{12}: cors\.allowedOrigins\[0\]: "https:\/\/\*\.com" is a wildcard over a public suffix/ })
  t.ok(await allowed('https://b.example.com'), 'the last good configuration still serves')

  fake.setConfigMap({ 'config.yaml': yaml('https://c.example.com', 'upstream: { maxConcurrent: 3 }') })
  await until(() => fake.events.length >= 3)
  t.match(fake.events[2], { type: 'Normal', reason: 'ConfigReloaded', note: /needs a restart to apply: upstream\.maxConcurrent/ })
  t.ok(await allowed('https://c.example.com'))

  t.ok(fake.requests.filter((q) => q.kind === 'list' || q.kind === 'watch').every((q) => q.query.fieldSelector === `metadata.name=${fake.name}`), 'every list and watch carried the field selector')
  t.comment(`kubernetes-mode reload latency: ${latency.toFixed(0)} ms`)
  // Deleting the ConfigMap is a problem to log, never a reason to drop the policy in service.
  fake.deleteConfigMap()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.ok(await allowed('https://c.example.com'), 'a deleted ConfigMap leaves the last good configuration in place')
  r.shutdown('test')
  t.equal(await done, 0)
})

t.test('an invalid ConfigMap at start is refused, with an Event saying why', async (t) => {
  const dir = t.testdir({})
  const fake = await startFakeKube()
  t.teardown(fake.close)
  fake.setConfigMap({ 'config.yaml': 'cors: { allowedOrigins: ["null", "https://*.com", "*", "ftp://x"], allowCredentials: true }' })
  const c = io()
  const env = { KUBECONFIG: kubeconfig(dir, fake), POD_NAMESPACE: fake.namespace, POD_NAME: 'pai-0' }
  t.equal(await run(['--config-source', 'kubernetes', '--configmap', fake.name], env, c.io), 2)
  t.match(c.err(), /configuration invalid \(4 problems\):\n {2}cors\.allowedOrigins\[0\]: "null" is refused/)
  t.match(fake.events[0], { type: 'Warning', reason: 'ConfigRejected', note: /^refused to start: cors\.allowedOrigins\[0\].*\(\+1 more\)$/ })
})

t.test('a ConfigMap that cannot be read stops the start with a clear message', async (t) => {
  const dir = t.testdir({})
  const fake = await startFakeKube()
  t.teardown(fake.close)
  const c = io()
  const env = { KUBECONFIG: kubeconfig(dir, fake), POD_NAMESPACE: fake.namespace, PAI_SIDECAR_CONFIG_SOURCE: 'kubernetes', PAI_SIDECAR_CONFIGMAP: fake.name, PAI_SIDECAR_CONFIGMAP_KEY: 'other.yaml' }
  t.equal(await run([], env, c.io), 2)
  t.match(c.err(), new RegExp(`configmap ${fake.namespace}/${fake.name} key other.yaml: `))
  const missing = io()
  t.equal(await run(['--config-source', 'kubernetes', '--configmap', fake.name], { KUBECONFIG: join(dir, 'nowhere'), POD_NAMESPACE: fake.namespace }, missing.io), 2, 'a KUBECONFIG that cannot be read too')
  t.match(missing.err(), new RegExp(`^configmap ${fake.namespace}/${fake.name} key config.yaml: .*ENOENT`))
})

t.test('Kubernetes mode needs a ConfigMap name and the pod namespace; sources are file or kubernetes', async (t) => {
  const a = io()
  t.equal(await run(['--config-source', 'kubernetes'], {}, a.io), 64)
  t.match(a.err(), /needs --configmap NAME/)
  const b = io()
  t.equal(await run(['--config-source', 'etcd'], {}, b.io), 64)
  t.match(b.err(), /"etcd" is not file or kubernetes/)
})
