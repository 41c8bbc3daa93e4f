// The chart's `helm test` script (files/helm-test.mjs), run for real: the exact command and
// environment of the rendered test Pod, against the real sidecar configured by the rendered ConfigMap
// in front of a real upstream. It must pass on a correct install and fail on a broken one.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { parse, stringify } from 'yaml'
import { HELMS, get, render, type Manifest } from './fixtures/helm.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'

interface Outcome { code: number, output: string }

async function runTestPod (docs: Manifest[], target: string): Promise<Outcome> {
  const container = get(docs, 'Pod', '-test-cors').spec.containers[0]
  const env = Object.fromEntries(container.env.map((e: { name: string, value: string }) => [e.name, e.value]))
  env.TARGET = target // the Service URL, here the sidecar on loopback
  const [node, ...flags] = container.command as string[]
  if (node !== 'node') throw new Error(`the test pod runs ${String(node)}, not node from the image`)
  return await new Promise((resolve) => {
    execFile(process.execPath, [...flags, ...container.args], { env: { ...env, PATH: process.env.PATH } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr })
    })
  })
}

async function sidecarFor (docs: Manifest[], t: Test): Promise<{ url: string, received: () => number }> {
  const upstream = await startUpstream()
  const config = parse(get(docs, 'ConfigMap', '-config').data['config.yaml'])
  const sidecar = await startSidecar(stringify(config), upstream.url)
  t.teardown(async () => { await sidecar.close(); await upstream.close() })
  return { url: sidecar.url, received: () => upstream.received.length }
}

t.test('passes against an install whose policy allows the origin', async (t) => {
  for (const origin of ['https://app.example.com', 'https://*.example.com']) {
    const docs = await render(HELMS[1], { set: { 'cors.allowedOrigins[0]': origin } })
    const sidecar = await sidecarFor(docs, t)
    const result = await runTestPod(docs, sidecar.url)
    t.equal(result.code, 0, `${origin}: helm test passes`, { output: result.output })
    t.notMatch(result.output, /FAIL/)
    t.match(result.output, /ok {3}preflight from https:\/\/(app|helm-test)\.example\.com answered 204/)
    t.match(result.output, /ok {3}GET \/ from .* reaches the API/)
    t.equal(sidecar.received(), 1, 'one request reached the API; preflights never do')
  }
})

t.test('with authentication on, it checks that a request without credentials gets the 401 a page can read', async (t) => {
  const docs = await render(HELMS[1], { set: { 'cors.allowedOrigins[0]': 'https://app.example.com', 'auth.jwt.issuer': 'https://login.example.com/', 'auth.jwt.audiences[0]': 'deid-api' } })
  const sidecar = await sidecarFor(docs, t)
  const result = await runTestPod(docs, sidecar.url)
  t.equal(result.code, 0, 'helm test passes', { output: result.output })
  t.match(result.output, /ok {3}GET \/ from https:\/\/app\.example\.com without credentials is refused with 401 and WWW-Authenticate/)
  t.match(result.output, /ok {3}the answer carries Access-Control-Allow-Origin/)
  t.equal(sidecar.received(), 0, 'nothing reached the API')
})

t.test('fails when the deployed policy does not allow the origin it checks', async (t) => {
  const docs = await render(HELMS[1], { set: { 'cors.allowedOrigins[0]': 'https://app.example.com', 'tests.origin': 'https://other.example.com' } })
  const sidecar = await sidecarFor(docs, t)
  const result = await runTestPod(docs, sidecar.url)
  t.equal(result.code, 1, 'helm test fails')
  t.match(result.output, /FAIL preflight from https:\/\/other\.example\.com answered 204 \(got 403\)/)
  t.equal(sidecar.received(), 0, 'the refused request never reached the API')
})

t.test('with no origin configured it checks that cross-origin calls are refused', async (t) => {
  const docs = await render(HELMS[1], {})
  const sidecar = await sidecarFor(docs, t)
  const result = await runTestPod(docs, sidecar.url)
  t.equal(result.code, 0, result.output)
  t.match(result.output, /ok {3}a preflight from https:\/\/helm-test-refused\.invalid is not allowed \(got 403\)/)
})
