// Every ci/*-values.yaml scenario, under Helm 3.17 and Helm 4.1: `helm lint --strict`, `helm template`,
// every rendered object valid against the Kubernetes (and CRD) schemas with no unknown field, both Helm
// versions rendering the same objects, and the rendered ConfigMap accepted by the sidecar's own
// --check-config (which knows more than any JSON schema: public suffixes, origin serialization).
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHART, HELMS, get, helm, parseManifests, render, scenario, templateArgs, type Manifest } from './fixtures/helm.ts'
import { strictlyChecked, validateManifest } from './fixtures/k8s-validate.ts'
import { run } from '../sidecar/cli/run.ts'

const SCENARIOS = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort()
// The oldest cluster the chart supports for regular mode, and one where native sidecars exist.
const KUBE = (name: string): string => name.startsWith('native') ? '1.31.0' : '1.29.0'

async function checkConfig (configMap: Manifest): Promise<{ code: number, out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'chart-config-'))
  try {
    const file = join(dir, 'config.yaml')
    writeFileSync(file, configMap.data['config.yaml'])
    let out = ''
    const io = { out: (s: string) => { out += s }, err: (s: string) => { out += s } }
    return { code: await run(['--check-config', file], {}, io), out }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('there are scenarios to render', async (t) => {
  t.ok(SCENARIOS.length >= 4, SCENARIOS.join(', '))
})

for (const name of SCENARIOS) {
  t.test(name, async (t) => {
    const outputs: string[] = []
    for (const which of HELMS) {
      const lint = await helm(which, ['lint', '--strict', CHART, '--values', scenario(name), '--kube-version', KUBE(name)])
      t.equal(lint.code, 0, `helm ${which.major} lint --strict passes`, { output: lint.stdout + lint.stderr })

      const result = await helm(which, templateArgs({ values: [scenario(name)], kubeVersion: KUBE(name) }))
      t.equal(result.code, 0, `helm ${which.major} template succeeds`, { stderr: result.stderr })
      outputs.push(result.stdout)
      const docs = parseManifests(result.stdout)
      for (const doc of docs) {
        t.same(await validateManifest(doc), [], `helm ${which.major}: ${doc.kind}/${doc.metadata.name} is valid`)
        t.equal(doc.metadata.namespace, 'ai', `${doc.kind} is in the release namespace`)
      }
      t.ok(docs.filter(strictlyChecked).length >= 5, 'built-in kinds are checked for unknown fields')

      const checked = await checkConfig(get(docs, 'ConfigMap', '-config'))
      t.equal(checked.code, 0, `helm ${which.major}: the sidecar accepts the rendered configuration`, { output: checked.out })
    }
    // The same chart must mean the same objects whichever Helm a user has.
    t.equal(outputs[1], outputs[0], 'Helm 3 and Helm 4 render identical manifests')
  })
}

t.test('the validators reject what the API server would', async (t) => {
  const docs = await render(HELMS[1], { values: [scenario('default-values.yaml')] })
  const deployment = structuredClone(get(docs, 'Deployment'))
  deployment.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes'
  deployment.spec.template.spec.containers[1].readinesProbe = deployment.spec.template.spec.containers[1].readinessProbe
  deployment.spec.template.spec.volumes[0].secret.secretNmae = 'x'
  const errors = await validateManifest(deployment)
  t.match(errors.join('\n'), /imagePullPolicy must be equal to one of the allowed values/, 'an enum value is checked')
  t.match(errors.join('\n'), /containers\[1\]\.readinesProbe: unknown field/, 'a misspelt field is found')
  t.match(errors.join('\n'), /volumes\[0\]\.secret\.secretNmae: unknown field/, 'nested unknown fields are found')

  const route = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'x' }, spec: { parentRefs: [{ name: 'g' }], rules: [{ timeouts: { request: '5 minutes' } }] } }
  t.match((await validateManifest(route)).join('\n'), /timeouts\/request must match pattern/, 'CRD schemas are checked too')
  t.match(await validateManifest({ apiVersion: 'v1', kind: 'Nonsense', metadata: { name: 'x' } }).catch((e: Error) => [e.message]), [/Nonsense/], 'an unknown kind is an error, not a pass')
})

t.test('a configuration the sidecar refuses is caught even when the chart schema lets it through', async (t) => {
  // A wildcard over a public suffix has the shape of an origin; only the sidecar knows the suffix list.
  const docs = await render(HELMS[0], { set: { 'cors.allowedOrigins[0]': 'https://*.co.uk' } })
  const checked = await checkConfig(get(docs, 'ConfigMap', '-config'))
  t.equal(checked.code, 2, '--check-config exits 2')
  t.match(checked.out, /cors\.allowedOrigins/, 'and names the field')
})
