// What the chart promises, asserted on the rendered manifests (Helm 4; chart-render.test.ts shows
// Helm 3 renders the same objects). One behaviour per subtest.
import t from 'tap'
import { parse } from 'yaml'
import { API_KEYS_DIR } from '../charts/schema.ts'
import { CHART, HELMS, find, get, helm, render, scenario, templateArgs, type Manifest, type RenderOptions } from './fixtures/helm.ts'
import { RESTART_ONLY } from '../sidecar/config/reload.ts'
import { ConfigSchema } from '../sidecar/config/schema.ts'

const HELM = HELMS[1]
const ORIGIN = { 'cors.allowedOrigins[0]': 'https://app.example.com' }
const renderWith = async (options: RenderOptions = {}): Promise<Manifest[]> =>
  await render(HELM, { ...options, set: { ...ORIGIN, ...options.set } })

type Container = Record<string, any>
const podSpec = (docs: Manifest[]): Record<string, any> => get(docs, 'Deployment').spec.template.spec
const container = (docs: Manifest[], name: string): Container => {
  const spec = podSpec(docs)
  const found = [...spec.containers, ...(spec.initContainers ?? [])].find((c: Container) => c.name === name)
  if (found === undefined) throw new Error(`no container ${name}`)
  return found
}
const config = (docs: Manifest[]): Record<string, any> => parse(get(docs, 'ConfigMap', '-config').data['config.yaml'])

t.test('one command: origins set on the command line reach the sidecar configuration', async (t) => {
  const docs = await renderWith()
  const cfg = config(docs)
  t.same(cfg.cors.allowedOrigins, ['https://app.example.com'])
  t.equal(cfg.upstream.url, 'http://127.0.0.1:8080', 'the sidecar forwards to the container on localhost')
  t.equal(cfg.server.host, '0.0.0.0', 'the public port listens on the pod IP')
  t.notOk('routes' in cfg, 'empty routes keep the sidecar defaults')
  t.notOk('shadow' in cfg, 'no shadow policy unless configured')
  t.same(container(docs, 'sidecar').args, ['--config', '/etc/pai-cors-sidecar/config.yaml'])
  const mount = container(docs, 'sidecar').volumeMounts.find((m: Container) => m.name === 'config')
  t.equal(mount.mountPath, '/etc/pai-cors-sidecar', 'the ConfigMap is a directory mount')
  t.notOk('subPath' in mount, 'never subPath: it would never see updates')
})

t.test('the Private AI container: image, licence, GPU, /dev/shm, probes, preStop', async (t) => {
  const docs = await renderWith({ kubeVersion: '1.31.0' })
  const api = container(docs, 'privateai')
  t.equal(api.image, 'crprivateaiprod.azurecr.io/deid:gpu')
  t.same(api.resources.limits['nvidia.com/gpu'], 1, 'a GPU in limits')
  t.notOk(api.resources.requests['nvidia.com/gpu'], 'not in requests (they default to the limit)')
  t.same(podSpec(docs).tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }])
  t.same(podSpec(docs).imagePullSecrets, [{ name: 'crprivateaiprod-creds' }])
  const license = podSpec(docs).volumes.find((v: Container) => v.name === 'license')
  t.same(license.secret, { secretName: 'private-ai-license', items: [{ key: 'license.json', path: 'license.json' }] })
  t.same(api.volumeMounts.find((m: Container) => m.name === 'license'), { name: 'license', mountPath: '/app/license', readOnly: true })
  t.same(podSpec(docs).volumes.find((v: Container) => v.name === 'dshm').emptyDir, { medium: 'Memory', sizeLimit: '4Gi' })
  t.equal(api.startupProbe.httpGet.path, '/healthz')
  t.ok(api.startupProbe.periodSeconds * api.startupProbe.failureThreshold >= 300, 'the startup probe waits minutes for the model')
  t.equal(api.readinessProbe.httpGet.path, '/healthz')
  t.notOk('livenessProbe' in api, 'no liveness probe by default (the vendor warns against it)')
  t.same(api.lifecycle.preStop, { sleep: { seconds: 35 } }, 'preStop outlives the sidecar drain: delay 5s + timeout 30s')
  t.equal(podSpec(docs).terminationGracePeriodSeconds, 40, 'grace period = preStop + 5s (docs/OPERATIONS.md)')

  const old = await renderWith({ kubeVersion: '1.29.0' })
  t.same(container(old, 'privateai').lifecycle.preStop, { exec: { command: ['sleep', '35'] } }, 'before 1.30 the exec form')
})

t.test('GPU settings: resource name, count, CPU images, MIG, runtime class', async (t) => {
  const mig = await renderWith({ set: { 'privateai.gpu.resourceName': 'nvidia.com/mig-1g.10gb', 'privateai.gpu.count': '2', runtimeClassName: 'nvidia' } })
  t.equal(container(mig, 'privateai').resources.limits['nvidia.com/mig-1g.10gb'], 2)
  t.notOk('nvidia.com/gpu' in container(mig, 'privateai').resources.limits)
  t.equal(podSpec(mig).runtimeClassName, 'nvidia')
  const cpu = await renderWith({ set: { 'privateai.gpu.enabled': 'false', 'privateai.image.tag': '4.1.0-cpu' } })
  t.notOk(Object.keys(container(cpu, 'privateai').resources.limits).some((k) => k.includes('nvidia')), 'no GPU requested')
  t.notOk('tolerations' in podSpec(cpu), 'no GPU toleration')
  t.equal(container(cpu, 'privateai').image, 'crprivateaiprod.azurecr.io/deid:4.1.0-cpu')
  const digest = `sha256:${'a'.repeat(64)}`
  const pinned = await renderWith({ set: { 'privateai.image.digest': digest, 'sidecar.image.digest': digest } })
  t.equal(container(pinned, 'privateai').image, `crprivateaiprod.azurecr.io/deid@${digest}`, 'a digest wins over the tag')
  t.equal(container(pinned, 'sidecar').image, `ghcr.io/pai-cors-sidecar/pai-cors-sidecar@${digest}`)
})

t.test('the sidecar runs with the restricted Pod Security profile', async (t) => {
  const docs = await renderWith()
  const sc = container(docs, 'sidecar').securityContext
  t.equal(sc.runAsNonRoot, true)
  t.ok(sc.runAsUser > 0, 'a non-zero UID')
  t.equal(sc.readOnlyRootFilesystem, true)
  t.equal(sc.allowPrivilegeEscalation, false)
  t.same(sc.capabilities.drop, ['ALL'])
  t.equal(sc.seccompProfile.type, 'RuntimeDefault')
  t.equal(podSpec(docs).securityContext.seccompProfile.type, 'RuntimeDefault')
  t.ok(container(docs, 'sidecar').volumeMounts.some((m: Container) => m.mountPath === '/tmp'), 'a writable /tmp')
  const volumeKinds = podSpec(docs).volumes.flatMap((v: Container) => Object.keys(v).filter((k) => k !== 'name'))
  t.same([...new Set(volumeKinds)].sort(), ['configMap', 'emptyDir', 'secret'], 'only volume types the restricted profile allows')
  t.equal(container(docs, 'sidecar').image, 'ghcr.io/pai-cors-sidecar/pai-cors-sidecar:0.1.0', 'the image tag defaults to appVersion')
})

t.test('sidecar.nodeOptions: NODE_OPTIONS sized for the 256Mi limit, overridable, never set twice', async (t) => {
  const env = (docs: Manifest[]): Container[] => container(docs, 'sidecar').env ?? []
  // Under a memory limit Node shrinks V8's young generation; docs/BENCHMARKS.md measures the cost.
  t.same(env(await renderWith()), [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=16' }], 'the default')
  t.equal(container(await renderWith({ set: { 'sidecar.nodeOptions': '' } }), 'sidecar').env, undefined, 'empty: Node\'s own sizing, no env')
  const extra = { 'sidecar.extraEnv[0].name': 'NODE_OPTIONS', 'sidecar.extraEnv[0].value': '--max-old-space-size=192' }
  const both = await helm(HELM, templateArgs({ set: { ...ORIGIN, ...extra } }))
  t.not(both.code, 0, 'two NODE_OPTIONS entries: the later would silently replace the other')
  t.match(both.stderr, 'sidecar.extraEnv sets NODE_OPTIONS, and so does sidecar.nodeOptions: put every option in sidecar.nodeOptions')
  t.same(env(await renderWith({ set: { 'sidecar.nodeOptions': '', ...extra } })), [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=192' }], 'extraEnv alone may still set it')
})

t.test('probes: the sidecar is live on /livez and ready on /readyz of the admin port', async (t) => {
  const docs = await renderWith()
  const sidecar = container(docs, 'sidecar')
  t.same(sidecar.livenessProbe.httpGet, { path: '/livez', port: 9090 })
  t.same(sidecar.readinessProbe.httpGet, { path: '/readyz', port: 9090 })
  t.same(sidecar.ports.map((p: Container) => p.containerPort), [8000, 9090])
})

t.test('native sidecar: initContainers with restartPolicy Always, only on Kubernetes >= 1.29', async (t) => {
  const docs = await renderWith({ set: { 'sidecar.native': 'true' }, kubeVersion: '1.29.0' })
  const spec = podSpec(docs)
  t.same(spec.containers.map((c: Container) => c.name), ['privateai'])
  t.same(spec.initContainers.map((c: Container) => c.name), ['sidecar'])
  t.equal(spec.initContainers[0].restartPolicy, 'Always')
  t.equal(spec.initContainers[0].startupProbe.httpGet.path, '/livez', 'startup gates on /livez, not on the upstream')
  // preStop covers propagation + drain timeout; grace = preStop + API stop + sidecar drain.
  t.same(container(docs, 'privateai').lifecycle.preStop, { exec: { command: ['sleep', '35'] } })
  t.equal(spec.terminationGracePeriodSeconds, 35 + 10 + 5 + 30)

  await t.rejects(renderWith({ set: { 'sidecar.native': 'true' }, kubeVersion: '1.28.9' }),
    /sidecar\.native needs Kubernetes >= 1\.29.*v1\.28\.9/, 'an older cluster is refused with the reason')
  const explicit = await renderWith({ set: { 'sidecar.native': 'true', terminationGracePeriodSeconds: '300', 'privateai.preStopSleepSeconds': '200' }, kubeVersion: '1.33.0' })
  t.equal(podSpec(explicit).terminationGracePeriodSeconds, 300, 'explicit values win')
  t.same(container(explicit, 'privateai').lifecycle.preStop, { sleep: { seconds: 200 } })
})

t.test('durations of any unit feed the computed grace period', async (t) => {
  const docs = await renderWith({ set: { 'shutdown.delay': '1500ms', 'shutdown.timeout': '2m' } })
  t.same(container(docs, 'privateai').lifecycle.preStop.sleep, { seconds: 2 + 120 }, 'milliseconds round up')
  const hours = await renderWith({ set: { 'shutdown.delay': '0s', 'shutdown.timeout': '1h' } })
  t.equal(podSpec(hours).terminationGracePeriodSeconds, 3600 + 5)
})

t.test('the Service exposes only the sidecar public port, by number', async (t) => {
  const docs = await renderWith()
  const service = get(docs, 'Service')
  t.same(service.spec.ports.map((p: Container) => [p.port, p.targetPort]), [[80, 8000]])
  t.notOk(find(docs, 'Service', '-metrics'), 'no metrics Service without a ServiceMonitor')
  const moved = await renderWith({ set: { 'server.port': '8443', 'service.port': '443' } })
  t.same(get(moved, 'Service').spec.ports[0].targetPort, 8443, 'follows server.port')
  t.equal(config(moved).server.port, 8443)
})

t.test('the NetworkPolicy admits the public and admin ports only', async (t) => {
  const docs = await renderWith()
  const policy = get(docs, 'NetworkPolicy')
  const ports = policy.spec.ingress.flatMap((rule: Container) => rule.ports.map((p: Container) => p.port))
  t.same(ports, [8000, 9090])
  t.notOk(ports.includes(8080), 'the container port is not reachable from outside the pod')
  const production = await render(HELM, { values: [scenario('production-values.yaml')] })
  const rules = get(production, 'NetworkPolicy').spec.ingress
  t.match(rules[0].from, [{ namespaceSelector: {} }, { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'test' } } }], 'the helm test pod stays allowed')
  t.same(rules[1].ports.map((p: Container) => p.port), [9090, 8080], 'container metrics only when scraped, only from metricsFrom')
  t.same(rules[1].from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }])
  t.notOk(find(await renderWith({ set: { 'networkPolicy.enabled': 'false' } }), 'NetworkPolicy'))
})

t.test('PodDisruptionBudget only with more than one replica', async (t) => {
  t.notOk(find(await renderWith(), 'PodDisruptionBudget'), 'none for one replica: it would block every drain')
  const three = await renderWith({ set: { replicaCount: '3' } })
  t.equal(get(three, 'PodDisruptionBudget').spec.maxUnavailable, 1)
  const scaled = await render(HELM, { values: [scenario('gateway-values.yaml')] })
  t.ok(find(scaled, 'PodDisruptionBudget'), 'with autoscaling, minReplicas decides')
  t.notOk('replicas' in get(scaled, 'Deployment').spec, 'the HPA owns replicas')
  t.same(get(scaled, 'HorizontalPodAutoscaler').spec.metrics[0].pods.metric.name, 'pai_sidecar_queue_depth')
})

t.test('Ingress and HTTPRoute point at the Service port', async (t) => {
  const production = await render(HELM, { values: [scenario('production-values.yaml')] })
  const ingress = get(production, 'Ingress')
  t.equal(ingress.spec.ingressClassName, 'nginx')
  t.same(ingress.spec.rules[0].http.paths[0].backend.service, { name: 'deid-pai-cors-sidecar', port: { number: 80 } })
  t.same(ingress.spec.tls, [{ hosts: ['deid.example.com'], secretName: 'deid-tls' }])
  const gateway = await render(HELM, { values: [scenario('gateway-values.yaml')] })
  const route = get(gateway, 'HTTPRoute')
  t.same(route.spec.parentRefs, [{ name: 'public', namespace: 'gateways', sectionName: 'https' }])
  t.same(route.spec.rules[0].backendRefs, [{ name: 'deid-pai-cors-sidecar', port: 80 }])
  t.same(route.spec.rules[0].timeouts, { request: '300s' }, 'long enough for large files')
  t.notOk(find(await renderWith(), 'Ingress'))
  t.notOk(find(await renderWith(), 'HTTPRoute'))
})

t.test('monitoring: ServiceMonitor or PodMonitor on the admin port, never both', async (t) => {
  const production = await render(HELM, { values: [scenario('production-values.yaml')] })
  const monitor = get(production, 'ServiceMonitor')
  t.same(monitor.spec.endpoints.map((e: Container) => e.port), ['admin', 'upstream-metrics'])
  t.equal(monitor.metadata.labels.release, 'kube-prometheus-stack')
  const metricsService = get(production, 'Service', '-metrics')
  t.same(metricsService.spec.selector, { 'app.kubernetes.io/name': 'pai-cors-sidecar', 'app.kubernetes.io/instance': 'deid' })
  t.same(monitor.spec.selector.matchLabels['app.kubernetes.io/component'], 'metrics', 'selects the metrics Service, not the public one')
  const gateway = await render(HELM, { values: [scenario('gateway-values.yaml')] })
  t.same(get(gateway, 'PodMonitor').spec.podMetricsEndpoints.map((e: Container) => e.port), ['admin'])
  t.notOk(find(gateway, 'ServiceMonitor'))
  await t.rejects(renderWith({ set: { 'metrics.serviceMonitor.enabled': 'true', 'metrics.podMonitor.enabled': 'true' } }), /choose one/)
})

t.test('PrometheusRule and dashboard carry the files verbatim (Prometheus templates intact)', async (t) => {
  const production = await render(HELM, { values: [scenario('production-values.yaml')] })
  const rule = get(production, 'PrometheusRule')
  t.ok(rule.spec.groups[0].rules.length >= 6)
  t.match(JSON.stringify(rule.spec), /\{\{ \$labels\.namespace \}\}/, 'not evaluated by Helm')
  const dashboard = get(production, 'ConfigMap', '-dashboard')
  t.equal(dashboard.metadata.labels.grafana_dashboard, '1')
  t.ok(JSON.parse(dashboard.data['pai-cors-sidecar.json']).panels.length > 0, 'valid dashboard JSON')
})

t.test('kubernetes config mode: a Role limited to one ConfigMap, a token for the sidecar only', async (t) => {
  const plain = await renderWith()
  t.notOk(find(plain, 'Role'), 'no RBAC in file mode')
  t.equal(podSpec(plain).automountServiceAccountToken, false, 'no token in file mode')
  t.equal(get(plain, 'ServiceAccount').automountServiceAccountToken, false)

  const docs = await renderWith({ set: { 'sidecar.configSource': 'kubernetes' } })
  const role = get(docs, 'Role')
  t.same(role.rules[0], { apiGroups: [''], resources: ['configmaps'], resourceNames: ['deid-pai-cors-sidecar-config'], verbs: ['get', 'list', 'watch'] })
  t.same(role.rules[1], { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] })
  t.same(get(docs, 'RoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'deid-pai-cors-sidecar', namespace: 'ai' }])
  t.equal(podSpec(docs).automountServiceAccountToken, false, 'the pod does not mount the token everywhere')
  const sidecar = container(docs, 'sidecar')
  t.same(sidecar.args, ['--config-source', 'kubernetes', '--configmap', 'deid-pai-cors-sidecar-config'])
  t.same(sidecar.env.map((e: Container) => e.name), ['NODE_OPTIONS', 'POD_NAMESPACE', 'POD_NAME', 'POD_UID'], 'the downward API, beside sidecar.nodeOptions')
  t.ok(sidecar.volumeMounts.some((m: Container) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount'), 'the sidecar gets the token')
  t.notOk(container(docs, 'privateai').volumeMounts.some((m: Container) => m.name === 'kube-api-access'), 'the Private AI container does not')
  t.notOk(podSpec(docs).volumes.some((v: Container) => v.name === 'config'), 'no ConfigMap volume: it is read through the API')
})

t.test('the checksum rolls pods for restart-only settings, not for hot-reloaded policy', async (t) => {
  const checksum = (docs: Manifest[]): string => get(docs, 'Deployment').spec.template.metadata.annotations['checksum/sidecar-restart']
  const base = checksum(await renderWith())
  t.match(base, /^[0-9a-f]{64}$/)
  const hot: Array<Record<string, string>> = [{ 'cors.allowedOrigins[1]': 'https://other.example.com' }, { 'cors.maxAge': '60' }, { 'limits.maxBodyBytes': '1024' },
    { 'routes[0].path': '/process/text', 'routes[0].methods[0]': 'POST' }, { 'shadow.allowedOrigins[0]': 'https://b.example.com' }, { 'log.level': 'debug' },
    { 'websocket.enabled': 'true' }, { 'auth.jwt.issuer': 'https://login.example.com/', 'auth.jwt.audiences[0]': 'deid-api' }]
  for (const set of hot) {
    t.equal(checksum(await renderWith({ set })), base, `${Object.keys(set)[0]} is hot-reloaded: no restart`)
  }
  const restart = [['upstream.maxConcurrent', '8'], ['server.keepAliveTimeout', '90s'], ['admin.port', '9100'], ['shutdown.timeout', '60s']] as const
  for (const [key, value] of restart) {
    t.not(checksum(await renderWith({ set: { [key]: value } })), base, `${key} is read at start: the pods roll`)
  }
  // One case per block of the sidecar's schema, on the side the sidecar puts it (RESTART_ONLY).
  const blockOf = (key: string): string => key.split(/[.[]/)[0] as string
  t.same([...new Set(restart.map(([key]) => blockOf(key)))].sort(), [...RESTART_ONLY].sort(), 'every restart-only block is tried')
  t.same([...new Set(hot.map((set) => blockOf(Object.keys(set)[0] as string)))].sort(),
    Object.keys(ConfigSchema.properties).filter((b) => !(RESTART_ONLY as readonly string[]).includes(b)).sort(), 'and every hot-reloaded one')
})

t.test('helm test pod: the sidecar image, an allowed origin, the Service URL', async (t) => {
  const pod = (docs: Manifest[]): Manifest => get(docs, 'Pod', '-test-cors')
  const env = (docs: Manifest[]): Record<string, string> => Object.fromEntries(pod(docs).spec.containers[0].env.map((e: Container) => [e.name, e.value]))
  const docs = await renderWith()
  t.equal(pod(docs).metadata.annotations['helm.sh/hook'], 'test')
  t.same(pod(docs).spec.containers[0].command, ['node', '--input-type=module', '-e'])
  t.equal(env(docs).TARGET, 'http://deid-pai-cors-sidecar.ai.svc:80')
  t.equal(env(docs).ORIGIN, 'https://app.example.com')
  const wildcard = await render(HELM, { set: { 'cors.allowedOrigins[0]': 'https://*.example.com' } })
  t.equal(env(wildcard).ORIGIN, 'https://helm-test.example.com', 'a wildcard becomes a concrete subdomain')
  const port = await render(HELM, { set: { 'cors.allowedOrigins[0]': 'http://localhost:*' } })
  t.equal(env(port).ORIGIN, 'http://localhost:8443', 'a wildcard port becomes a number')
  const any = await render(HELM, { values: [scenario('gateway-values.yaml')] })
  t.equal(env(any).ORIGIN, 'https://helm-test.invalid')
  const chosen = await renderWith({ set: { 'tests.origin': 'https://qa.example.com' } })
  t.equal(env(chosen).ORIGIN, 'https://qa.example.com')
  t.equal(env(await render(HELM, {})).ORIGIN, '', 'no origin configured: the test checks refusals only')
})

t.test('names, labels and overrides', async (t) => {
  const docs = await render(HELM, { values: [scenario('production-values.yaml')], release: 'pai-cors-sidecar' })
  t.equal(get(docs, 'Deployment').metadata.name, 'pai-cors-sidecar', 'a release named like the chart is not doubled')
  for (const doc of docs) t.equal(doc.metadata.labels.team, 'privacy', `${doc.kind} has commonLabels`)
  const renamed = await renderWith({ set: { fullnameOverride: 'deid' } })
  t.same(renamed.map((d) => d.metadata.name).sort(), ['deid', 'deid', 'deid', 'deid', 'deid-config', 'deid-test-cors'])
  const spread = podSpec(await render(HELM, { values: [scenario('production-values.yaml')] })).topologySpreadConstraints[0]
  t.same(spread.labelSelector.matchLabels, { 'app.kubernetes.io/name': 'pai-cors-sidecar', 'app.kubernetes.io/instance': 'deid' }, 'spread constraints select the pods by default')
})

t.test('NOTES.txt tells how to test a preflight', async (t) => {
  const result = await helm(HELM, ['install', 'deid', CHART, '--dry-run=client', '--namespace', 'ai', '--set', 'cors.allowedOrigins[0]=https://*.example.com'])
  t.equal(result.code, 0, result.stderr)
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'))
  t.match(notes, /curl -si -X OPTIONS http:\/\/127\.0\.0\.1:8000\/process\/text/)
  t.match(notes, /Origin: https:\/\/helm-test\.example\.com/, 'with an origin the policy allows')
  t.match(notes, /helm test deid -n ai/)
  const empty = await helm(HELM, ['install', 'deid', CHART, '--dry-run=client'])
  t.match(empty.stdout, /WARNING: cors\.allowedOrigins is empty/)
})

t.test('auth: the sidecar block as configured, the API key Secret mounted as a directory, the path set by the chart', async (t) => {
  const set = {
    'auth.jwt.issuer': 'https://login.example.com/',
    'auth.jwt.audiences[0]': 'deid-api',
    'auth.apiKeys.existingSecret': 'deid-api-keys',
    'auth.apiKeys.key': 'hashes'
  }
  for (const configSource of ['file', 'kubernetes']) {
    const docs = await renderWith({ set: { ...set, 'sidecar.configSource': configSource } })
    t.same(config(docs).auth, { jwt: { issuer: 'https://login.example.com/', audiences: ['deid-api'] }, apiKeys: { file: `${API_KEYS_DIR}/keys` } }, configSource)
    t.same(podSpec(docs).volumes.find((v: Container) => v.name === 'api-keys'), { name: 'api-keys', secret: { secretName: 'deid-api-keys', items: [{ key: 'hashes', path: 'keys' }] } })
    const mount = container(docs, 'sidecar').volumeMounts.find((m: Container) => m.name === 'api-keys')
    t.same(mount, { name: 'api-keys', mountPath: API_KEYS_DIR, readOnly: true }, 'a directory, never subPath')
  }
  const off = await renderWith()
  t.equal(config(off).auth, undefined, 'off by default')
  t.notOk(podSpec(off).volumes.some((v: Container) => v.name === 'api-keys'))
  const jwtOnly = await renderWith({ set: { 'auth.jwt.issuer': 'https://login.example.com/', 'auth.jwt.audiences[0]': 'deid-api' } })
  t.notOk(podSpec(jwtOnly).volumes.some((v: Container) => v.name === 'api-keys'), 'no Secret without apiKeys')
  t.same(config(jwtOnly).auth, { jwt: { issuer: 'https://login.example.com/', audiences: ['deid-api'] } })
})

t.test('NOTES.txt shows how to call with a token or a key, and says when authentication is off', async (t) => {
  const notes = async (args: string[]): Promise<string> => {
    const result = await helm(HELM, ['install', 'deid', CHART, '--dry-run=client', '--namespace', 'ai', '--set', 'cors.allowedOrigins[0]=https://app.example.com', ...args])
    t.equal(result.code, 0, result.stderr)
    return result.stdout.slice(result.stdout.indexOf('NOTES:'))
  }
  const jwt = ['--set', 'auth.jwt.issuer=https://login.example.com/', '--set', 'auth.jwt.audiences[0]=deid-api']
  const both = await notes([...jwt, '--set', 'auth.apiKeys.existingSecret=deid-api-keys'])
  t.match(both, /Authentication is on: every request \(preflights excepted\) needs a bearer token from https:\/\/login\.example\.com\/ for audience deid-api, or an API key\./)
  t.match(both, /-H "Authorization: Bearer \$ACCESS_TOKEN"/)
  t.match(both, /WARNING: cors\.allowedHeaders does not list authorization/)
  t.match(both, /kubectl -n ai create secret generic deid-api-keys --from-file=keys=keys/)
  const listed = await notes([...jwt, '--set', 'cors.allowedHeaders[0]=authorization'])
  t.notMatch(listed, /WARNING: cors\.allowedHeaders/)
  t.notMatch(listed, /x-api-key/)
  t.match(await notes(['--set', 'auth.apiKeys.existingSecret=k']), /needs an API key\./)
  t.match(await notes([]), /Authentication is off: anyone who can reach the Service can use the GPU/)
})
