// The chart with HTTPS on the sidecar's public port (README, "HTTPS and HTTP/2"): tls.existingSecret
// or a cert-manager Certificate, the Secret mounted as a directory (never subPath, so renewals reach
// the sidecar), server.tls in the ConfigMap, the Service port named https, NOTES, and `helm test`
// over HTTPS against a real sidecar serving the Secret's certificate.
import t from 'tap'
import { execFile } from 'node:child_process'
import { parse, stringify } from 'yaml'
import { validate } from '../sidecar/config/load.ts'
import { readPair } from '../sidecar/tls.ts'
import { makeCa } from './fixtures/certs.ts'
import { HELMS, find, get, helm, render, templateArgs, type Manifest } from './fixtures/helm.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'

const EXISTING = { 'tls.enabled': 'true', 'tls.existingSecret': 'api-tls', 'cors.allowedOrigins[0]': 'https://app.example.com' }
const CERT_MANAGER = { 'tls.enabled': 'true', 'tls.certManager.enabled': 'true', 'tls.certManager.issuerRef.name': 'letsencrypt', 'tls.certManager.issuerRef.kind': 'ClusterIssuer', 'tls.certManager.dnsNames[0]': 'api.example.com', 'tls.certManager.renewBefore': '720h' }

const sidecarOf = (docs: Manifest[]): Record<string, any> => {
  const spec = get(docs, 'Deployment').spec.template.spec
  return [...(spec.initContainers ?? []), ...spec.containers].find((c: { name: string }) => c.name === 'sidecar')
}

t.test('tls.existingSecret: mounted as a directory, server.tls in the ConfigMap, the Service port named https', async (t) => {
  for (const which of HELMS) {
    const docs = await render(which, { set: EXISTING })
    const config = parse(get(docs, 'ConfigMap', '-config').data['config.yaml'])
    t.same(config.server.tls, { certFile: '/etc/pai-cors-sidecar-tls/tls.crt', keyFile: '/etc/pai-cors-sidecar-tls/tls.key', minVersion: 'TLSv1.2' })
    t.ok(validate(stringify(config), 'chart').ok, 'the sidecar accepts the rendered configuration')
    const sidecar = sidecarOf(docs)
    const mount = sidecar.volumeMounts.find((m: { name: string }) => m.name === 'tls')
    t.same(mount, { name: 'tls', mountPath: '/etc/pai-cors-sidecar-tls', readOnly: true })
    t.notOk('subPath' in mount, 'never subPath: it would never see a renewal')
    t.equal(sidecar.ports[0].name, 'https')
    const volume = get(docs, 'Deployment').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls')
    t.equal(volume.secret.secretName, 'api-tls')
    const port = get(docs, 'Service').spec.ports[0]
    t.match(port, { name: 'https', port: 443, appProtocol: 'https' })
    t.equal(find(docs, 'Certificate'), undefined)
    const test = get(docs, 'Pod', '-test-cors').spec
    const env = Object.fromEntries(test.containers[0].env.map((e: { name: string, value: string }) => [e.name, e.value]))
    t.match(env, { TARGET: 'https://deid-pai-cors-sidecar.ai.svc:443', TLS_CERT: '/etc/pai-cors-sidecar-tls/tls.crt' })
    t.equal(test.volumes[0].secret.secretName, 'api-tls')
  }
  // An Ingress or a Gateway in front re-encrypts to the https port (its controller needs to be told
  // so, e.g. ingress-nginx's backend-protocol annotation).
  const fronted = await render(HELMS[1], { set: { ...EXISTING, 'ingress.enabled': 'true', 'ingress.hosts[0].host': 'api.example.com', 'ingress.hosts[0].paths[0].path': '/', 'ingress.hosts[0].paths[0].pathType': 'Prefix' } })
  t.equal(get(fronted, 'Ingress').spec.rules[0].http.paths[0].backend.service.port.number, 443)
  const plain = await render(HELMS[1], {})
  t.match(get(plain, 'Service').spec.ports[0], { name: 'http', port: 80, appProtocol: 'http' })
  t.equal(parse(get(plain, 'ConfigMap', '-config').data['config.yaml']).server.tls, undefined)
})

t.test('tls.certManager: a Certificate that writes the Secret the pods mount', async (t) => {
  const docs = await render(HELMS[1], { set: CERT_MANAGER })
  const cert = get(docs, 'Certificate')
  t.match(cert, { apiVersion: 'cert-manager.io/v1', spec: { secretName: 'deid-pai-cors-sidecar-tls', issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' }, dnsNames: ['api.example.com'], renewBefore: '720h', privateKey: { rotationPolicy: 'Always' } } })
  t.notOk('duration' in cert.spec)
  t.equal(get(docs, 'Deployment').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName, 'deid-pai-cors-sidecar-tls')
  const named = await render(HELMS[0], { set: { ...CERT_MANAGER, 'tls.existingSecret': 'mine', 'tls.certManager.duration': '2160h' } })
  t.match(get(named, 'Certificate').spec, { secretName: 'mine', duration: '2160h' })
})

t.test('refused at install: no certificate named, a Certificate without issuer or names, a bad minVersion', async (t) => {
  const dir = t.testdir({ 'no-names.yaml': 'tls: { certManager: { dnsNames: [] } }\n' })
  const fails = async (set: Record<string, string>, values: string[] = []): Promise<string> => {
    const r = await helm(HELMS[1], templateArgs({ set, values }))
    t.not(r.code, 0, JSON.stringify(set))
    return r.stderr
  }
  t.match(await fails({ 'tls.enabled': 'true' }), /tls\.enabled needs a certificate: set tls\.existingSecret/)
  t.match(await fails({ ...CERT_MANAGER, 'tls.certManager.issuerRef.name': '' }), /needs tls\.certManager\.issuerRef\.name/)
  t.match(await fails({ ...CERT_MANAGER, 'tls.certManager.dnsNames': 'null' }), /tls.certManager.*dnsNames/)
  const { 'tls.certManager.dnsNames[0]': _, ...unnamed } = CERT_MANAGER
  t.match(await fails(unnamed, [`${dir}/no-names.yaml`]), /needs tls\.certManager\.dnsNames/)
  t.match(await fails({ ...EXISTING, 'tls.minVersion': 'TLSv1.1' }), /minVersion/)
  t.match(await fails({ ...EXISTING, 'server.tls.certFile': '/x' }), /tls/)
})

t.test('NOTES say how to reach the API over HTTPS', async (t) => {
  const r = await helm(HELMS[1], ['install', 'deid', (await import('./fixtures/helm.ts')).CHART, '--dry-run', '--namespace', 'ai', ...Object.entries(EXISTING).flatMap(([k, v]) => ['--set', `${k}=${v}`])])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /deid-pai-cors-sidecar\.ai\.svc:443 \(HTTPS, HTTP\/2 and HTTP\/1\.1/)
  t.match(r.stdout, /curl -si --http2 -k -X OPTIONS https:\/\/127\.0\.0\.1:8443\/process\/text/)
})

async function runTestPod (docs: Manifest[], target: string, certFile: string): Promise<{ code: number, output: string }> {
  const container = get(docs, 'Pod', '-test-cors').spec.containers[0]
  const env = Object.fromEntries(container.env.map((e: { name: string, value: string }) => [e.name, e.value]))
  env.TARGET = target
  env.TLS_CERT = certFile
  const [, ...flags] = container.command as string[]
  return await new Promise((resolve) => {
    execFile(process.execPath, [...flags, ...container.args], { env: { ...env, PATH: process.env.PATH } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr })
    })
  })
}

t.test('helm test over HTTPS: passes against the sidecar serving the Secret\'s certificate, fails against another', async (t) => {
  const ca = await makeCa()
  t.teardown(ca.remove)
  const served = await ca.leaf('served')
  const other = await ca.leaf('other')
  const pair = await readPair({ certFile: served.certFile, keyFile: served.keyFile, minVersion: 'TLSv1.2' })
  if (!pair.ok) throw new Error(pair.errors.join('\n'))
  const docs = await render(HELMS[1], { set: EXISTING })
  const config = parse(get(docs, 'ConfigMap', '-config').data['config.yaml'])
  delete config.server.tls // the test's own files, not the pod's paths
  const up = await startUpstream()
  t.teardown(up.close)
  const sidecar = await startSidecar(stringify(config), up.url, 'silent', { tls: pair.pair })
  t.teardown(sidecar.close)
  const ok = await runTestPod(docs, sidecar.url, served.certFile)
  t.equal(ok.code, 0, ok.output)
  t.match(ok.output, /ok {3}the sidecar serves the certificate of the Secret/)
  t.match(ok.output, /ok {3}ALPN picks HTTP\/2 \(got h2\)/)
  t.match(ok.output, /ok {3}preflight from https:\/\/app\.example\.com answered 204/)
  t.match(ok.output, /ok {3}GET \/ from https:\/\/app\.example\.com reaches the API/)
  const wrong = await runTestPod(docs, sidecar.url, other.certFile)
  t.not(wrong.code, 0)
  t.match(wrong.output, /FAIL the sidecar serves the certificate of the Secret/)
})
