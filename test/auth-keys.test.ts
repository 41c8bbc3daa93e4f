// API keys at the sidecar: SHA-256 digests in a file (never the keys), sent as x-api-key or as a
// bearer token, the file reloaded when it changes (the kubelet-style watch of config/watch.ts), and
// both methods together. The WebSocket upgrade is authenticated the same way.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { matchKey, parseKeyFile } from '../sidecar/auth/api-keys.ts'
import { WatchedKeyFile } from '../sidecar/auth/key-file.ts'
import { AUDIENCE, startIdp } from './fixtures/idp.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { receivedWith, startUpstream, type Upstream } from './fixtures/upstream.ts'
import { openWs, startWsUpstream, until } from './fixtures/ws.ts'

const APP = 'https://app.example.com'
const sha = (key: string): string => createHash('sha256').update(key).digest('hex')
const FAST = { keyFile: { debounceMs: 10, pollMs: 50 } }
let seq = 0

function keyDir (lines: string): { dir: string; file: string; replace: (text: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pai-api-keys-'))
  const file = join(dir, 'keys')
  writeFileSync(file, lines)
  // A whole new file renamed over the old one, as an editor or a Secret volume's swap does.
  const replace = (text: string): void => { writeFileSync(join(dir, 'keys.tmp'), text); renameSync(join(dir, 'keys.tmp'), file) }
  return { dir, file, replace }
}

async function call (sc: TestSidecar, up: Upstream, headers: Record<string, string>): Promise<{ status: number; headers: Headers; reached: boolean; apiKeyUpstream: unknown }> {
  const id = `auth-keys-${++seq}`
  const res = await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin: APP, 'x-request-id': id, ...headers }, body: '{}' })
  await res.arrayBuffer()
  const seen = receivedWith(up, id)
  return { status: res.status, headers: res.headers, reached: seen !== undefined, apiKeyUpstream: seen?.headers['x-api-key'] }
}

const reloads = async (sc: TestSidecar, result: string): Promise<number> =>
  (await sc.metrics.authKeyFileReloads.get()).values.find((v) => v.labels.result === result)?.value ?? 0

async function start (t: Test, yaml: string): Promise<{ up: Upstream; sc: TestSidecar }> {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`cors: { allowedOrigins: [${APP}] }\nroutes: [{ path: /process/text, methods: [POST] }]\n${yaml}`, up.url, 'info', { authOptions: FAST })
  t.teardown(sc.close)
  return { up, sc }
}

t.test('the key file: right, wrong, and rotated', async (t) => {
  const keys = keyDir(`# CI\n${sha('key-one')} ci-pipeline\n`)
  const { up, sc } = await start(t, `auth: { apiKeys: { file: ${keys.file} } }`)
  const right = await call(sc, up, { 'x-api-key': 'key-one' })
  t.equal(right.status, 200)
  t.ok(right.reached)
  t.equal(right.apiKeyUpstream, undefined, 'the key is removed before forwarding')
  t.equal((await call(sc, up, { authorization: 'Bearer key-one' })).status, 200, 'as a bearer token')
  const wrong = await call(sc, up, { 'x-api-key': 'key-two' })
  t.equal(wrong.status, 401)
  t.notOk(wrong.reached)
  t.equal(wrong.headers.get('access-control-allow-origin'), APP)
  t.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="pai-cors-sidecar", error="invalid_token"')
  t.equal((await call(sc, up, { 'x-api-key': 'key-one, key-one' })).status, 401, 'two keys are no key')
  t.equal((await call(sc, up, {})).status, 401)

  keys.replace(`${sha('key-two')} rotated\n`)
  await until(async () => await reloads(sc, 'success') >= 1)
  t.equal((await call(sc, up, { 'x-api-key': 'key-two' })).status, 200, 'the new key is accepted')
  t.equal((await call(sc, up, { 'x-api-key': 'key-one' })).status, 401, 'the old key no longer is')

  keys.replace('sk-not-a-hash\n')
  await until(async () => await reloads(sc, 'failure') >= 1)
  t.equal((await call(sc, up, { 'x-api-key': 'key-two' })).status, 200, 'a bad file keeps the last good keys')
  rmSync(keys.file)
  await until(async () => await reloads(sc, 'failure') >= 2)
  t.equal((await call(sc, up, { 'x-api-key': 'key-two' })).status, 200, 'so does a missing one')
  const all = JSON.stringify(sc.logs)
  for (const secret of ['key-one', 'key-two', 'sk-not-a-hash', sha('key-two')]) t.notOk(all.includes(secret), 'no key, hash or line in the logs')
  t.ok(sc.logs.some((l) => l.msg === 'API key file refused: the last good keys stay in force'))
})

t.test('both methods: a request passes if either accepts it; the label is the rate-limit key', async (t) => {
  const idp = await startIdp()
  t.teardown(idp.close)
  const keys = keyDir(`${sha('key-a')} a\n${sha('key-b')} b\n`)
  const { up, sc } = await start(t, `auth: { apiKeys: { file: ${keys.file} }, jwt: { issuer: "${idp.issuer}", audiences: [${AUDIENCE}], jwksUrl: "${idp.jwksUrl}" } }
limits: { rateLimit: { enabled: true, max: 1, window: 1h } }`)
  t.equal((await call(sc, up, { authorization: `Bearer ${await idp.sign()}` })).status, 200, 'a token')
  t.equal((await call(sc, up, { 'x-api-key': 'key-a' })).status, 200, 'a key')
  t.equal((await call(sc, up, { authorization: 'Bearer key-b' })).status, 200, 'another key, as a bearer token')
  t.equal((await call(sc, up, { 'x-api-key': 'key-a' })).status, 429, 'key a has used its budget')
  const neither = await call(sc, up, { authorization: 'Bearer not-a-key' })
  t.equal(neither.status, 401)
  t.equal(neither.headers.get('access-control-allow-origin'), APP)
  const metrics = await sc.metrics.registry.getSingleMetricAsString('pai_sidecar_auth_total')
  t.match(metrics, 'method="api_key",result="accepted",reason="ok"} 3')
  t.match(metrics, 'method="jwt",result="unauthorized",reason="malformed"} 1')
})

t.test('WebSocket upgrades are authenticated too (x-api-key or Authorization from non-browser clients)', async (t) => {
  const keys = keyDir(`${sha('ws-key')} ws\n`)
  const up = await startWsUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`websocket: { enabled: true, allowMissingOrigin: true }\nauth: { apiKeys: { file: ${keys.file} } }`, up.url)
  t.teardown(sc.close)
  const refused = await openWs(sc.url, { headers: { 'x-api-key': 'wrong' } })
  t.match(refused, { ok: false, status: 401, headers: { 'www-authenticate': 'Bearer realm="pai-cors-sidecar", error="invalid_token"' }, body: { error: { code: 'unauthorized' } } })
  t.equal(up.handshakes.length, 0, 'the upstream heard nothing')
  const o = await openWs(sc.url, { headers: { 'x-api-key': 'ws-key' } })
  t.ok(o.ok)
  if (o.ok) o.ws.close()
  t.equal(up.handshakes[0]?.headers['x-api-key'], undefined, 'the key is not forwarded')
  await until(() => sc.logs.filter((l) => l.websocket === true).length >= 1)
  t.match(sc.logs.find((l) => l.websocket === true && l.status === 401), { auth: 'unauthorized', authMethod: 'api_key', authReason: 'unknown_key', authRef: undefined })
  t.notOk(JSON.stringify(sc.logs).includes('ws-key'), 'no key in the logs')
})

t.test('parsing and matching', async (t) => {
  const parsed = parseKeyFile(`${sha('k')}\r\n  ${sha('l').toUpperCase()}   labelled  \n`)
  if (!parsed.ok) throw new Error(parsed.errors.join())
  t.same(parsed.keys.map((k) => k.label), [`sha256:${sha('k').slice(0, 8)}`, 'labelled'])
  t.equal(matchKey(parsed.keys, 'l'), 'labelled')
  t.equal(matchKey(parsed.keys, 'm'), undefined)
  t.equal(matchKey([], 'k'), undefined)
})

t.test('a key file unreadable when serving starts: no key is accepted, and the file is watched for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pai-api-keys-'))
  const events: string[] = []
  const watched = new WatchedKeyFile(join(dir, 'keys'), { reloaded: (n) => events.push(`reloaded ${n}`), rejected: (e) => events.push(e.join()) }, FAST.keyFile)
  t.teardown(() => watched.stop())
  t.same(watched.keys, [])
  t.same(events, ['cannot read the file (ENOENT)'])
  writeFileSync(join(dir, 'keys'), `${sha('late')}\n`)
  await until(() => watched.keys.length === 1)
  t.equal(matchKey(watched.keys, 'late'), `sha256:${sha('late').slice(0, 8)}`)
})
