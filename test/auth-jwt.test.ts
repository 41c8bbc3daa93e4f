// JWT authentication at the sidecar, end to end: a real identity provider stand-in (discovery and a
// JWKS on 127.0.0.1:0), real tokens signed with jose, the real public app in front of a recording
// upstream. Every refusal: the upstream saw nothing, and the answer is readable by the page (CORS).
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { base64url, SignJWT } from 'jose'
import { AUDIENCE, startIdp, type FakeIdp } from './fixtures/idp.ts'
import { snapshot, startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { receivedWith, startUpstream, type Upstream } from './fixtures/upstream.ts'

const APP = 'https://app.example.com'
let seq = 0

function yaml (idp: FakeIdp, jwt: string, extra = ''): string {
  return `
cors: { allowedOrigins: [${APP}], allowedHeaders: [content-type, authorization] }
routes: [{ path: /process/text, methods: [POST] }]
auth:
  jwt: { issuer: "${idp.issuer}", audiences: [other-api, ${AUDIENCE}]${jwt} }
${extra}`
}

interface Answer { status: number; headers: Headers; body: { error?: { code: string } }; reached: boolean; upstreamAuthorization: string | undefined }

async function call (sc: TestSidecar, up: Upstream, token: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const id = `auth-jwt-${++seq}`
  const res = await fetch(`${sc.url}/process/text`, {
    method: 'POST',
    headers: { origin: APP, 'content-type': 'application/json', 'x-request-id': id, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    body: '{"text":["hello"]}'
  })
  const text = await res.text()
  const seen = receivedWith(up, id)
  return { status: res.status, headers: res.headers, body: res.headers.get('content-type')?.includes('json') === true ? JSON.parse(text) : {}, reached: seen !== undefined, upstreamAuthorization: seen?.headers.authorization as string | undefined }
}

function refused (t: Test, a: Answer, status: number, code: string, wwwAuthenticate?: string): void {
  t.equal(a.status, status, `${status} ${code}`)
  t.equal(a.body.error?.code, code)
  t.notOk(a.reached, 'the upstream saw nothing')
  t.equal(a.headers.get('access-control-allow-origin'), APP, 'the page can read the refusal')
  if (wwwAuthenticate !== undefined) t.equal(a.headers.get('www-authenticate'), wwwAuthenticate)
}

async function setup (t: Test, jwt = ', jwksUrl: "JWKS"', extra = ''): Promise<{ idp: FakeIdp; up: Upstream; sc: TestSidecar }> {
  const idp = await startIdp()
  t.teardown(idp.close)
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(yaml(idp, jwt.replace('JWKS', idp.jwksUrl), extra), up.url)
  t.teardown(sc.close)
  return { idp, up, sc }
}

const INVALID = 'Bearer realm="pai-cors-sidecar", error="invalid_token"'
const now = (): number => Math.floor(Date.now() / 1000)

t.test('a valid token passes, and the upstream never sees it', async (t) => {
  const { idp, up, sc } = await setup(t)
  const a = await call(sc, up, await idp.sign())
  t.equal(a.status, 200)
  t.ok(a.reached)
  t.equal(a.upstreamAuthorization, undefined, 'Authorization is removed before forwarding')
  const line = sc.logs.find((l) => l.status === 200 && l.auth === 'accepted')
  t.match(line, { authMethod: 'jwt', authReason: 'ok', authRef: /^[0-9a-f]{12}$/ })
  t.notOk(JSON.stringify(sc.logs).includes('user-1'), 'the subject is not logged')
  const metrics = await sc.metrics.registry.getSingleMetricAsString('pai_sidecar_auth_total')
  t.match(metrics, 'pai_sidecar_auth_total{method="jwt",result="accepted",reason="ok"} 1')
})

t.test('every bad token is refused with 401 invalid_token, readable by the page', async (t) => {
  const { idp, up, sc } = await setup(t)
  const valid = await idp.sign()
  const [header, payload, signature] = valid.split('.') as [string, string, string]
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)))
  const tampered = `${header}.${base64url.encode(JSON.stringify({ ...claims, sub: 'admin' }))}.${signature}`
  const unsigned = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${payload}.`
  const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: idp.key.kid }).sign(new TextEncoder().encode(idp.key.publicPem))
  const es = await idp.newKey(true, 'ES384')
  const cases: [string, string, string][] = [
    ['expired', await idp.sign({ exp: now() - 3600 }), 'expired'],
    ['not yet valid', await idp.sign({ nbf: now() + 3600 }), 'not_yet_valid'],
    ['wrong issuer', await idp.sign({ iss: 'https://evil.example' }), 'wrong_issuer'],
    ['wrong audience', await idp.sign({ aud: 'someone-else' }), 'wrong_audience'],
    ['without exp', await idp.sign({ exp: undefined }), 'malformed'],
    ['alg: none', unsigned, 'alg_not_allowed'],
    ['HS256 signed with the public key', hs256, 'alg_not_allowed'],
    ['an algorithm not in the allowlist (ES384)', await idp.sign({}, { key: es }), 'alg_not_allowed'],
    ['a tampered payload', tampered, 'bad_signature'],
    ['not a JWT at all', 'abc.def', 'malformed']
  ]
  for (const [name, token, reason] of cases) {
    t.test(name, async (t) => {
      refused(t, await call(sc, up, token), 401, 'unauthorized', INVALID)
      const metrics = await sc.metrics.registry.getSingleMetricAsString('pai_sidecar_auth_total')
      t.match(metrics, `result="unauthorized",reason="${reason}"`)
    })
  }
  t.test('no Authorization header: 401 without an error code (RFC 6750 §3.1)', async (t) => {
    refused(t, await call(sc, up, undefined), 401, 'unauthorized', 'Bearer realm="pai-cors-sidecar"')
  })
  t.test('another scheme is no credential', async (t) => {
    refused(t, await call(sc, up, undefined, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'unauthorized', 'Bearer realm="pai-cors-sidecar"')
  })
  t.test('a Bearer header that is not a b64token', async (t) => {
    refused(t, await call(sc, up, undefined, { authorization: 'Bearer a b' }), 401, 'unauthorized', INVALID)
  })
  t.test('x-api-key is not looked at when only jwt is configured', async (t) => {
    refused(t, await call(sc, up, undefined, { 'x-api-key': 'k' }), 401, 'unauthorized', 'Bearer realm="pai-cors-sidecar"')
  })
  t.notOk(JSON.stringify(sc.logs).includes(valid.slice(-20)), 'no token in the logs')
})

t.test('a preflight is never authenticated', async (t) => {
  const { up, sc } = await setup(t)
  const res = await fetch(`${sc.url}/process/text`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } })
  t.equal(res.status, 204)
  t.equal(res.headers.get('access-control-allow-headers'), 'authorization, content-type')
  t.equal(up.received.length, 0)
})

t.test('a required claim: a valid token without it gets 403 insufficient_scope', async (t) => {
  const { idp, up, sc } = await setup(t, ', jwksUrl: "JWKS", requiredClaims: { scope: "deid:process", tenant: acme }')
  refused(t, await call(sc, up, await idp.sign({ scope: 'openid email', tenant: 'acme' })), 403, 'forbidden', 'Bearer realm="pai-cors-sidecar", error="insufficient_scope"')
  refused(t, await call(sc, up, await idp.sign({ scope: 'openid deid:process', tenant: ['other'] })), 403, 'forbidden')
  refused(t, await call(sc, up, await idp.sign({ scope: 'deid:process', tenant: 7 })), 403, 'forbidden')
  t.equal((await call(sc, up, await idp.sign({ scope: 'openid deid:process', tenant: 'acme' }))).status, 200)
  t.equal((await call(sc, up, await idp.sign({ scope: ['deid:process'], tenant: ['acme', 'x'] }))).status, 200)
})

t.test('an unknown kid: refused, and accepted once the provider publishes the key and the cool-down has passed', async (t) => {
  const { idp, up, sc } = await setup(t, ', jwksUrl: "JWKS", jwksCooldown: 1s')
  t.equal((await call(sc, up, await idp.sign())).status, 200)
  const next = await idp.newKey(false)
  const token = await idp.sign({}, { key: next })
  refused(t, await call(sc, up, token), 401, 'unauthorized', INVALID)
  idp.publish(next)
  await sleep(1100)
  t.equal((await call(sc, up, token)).status, 200, 'the rotated-in key verifies after the refresh')
})

t.test('a flood of made-up kids does not hammer the provider (jwksCooldown, 30s by default)', async (t) => {
  const { idp, up, sc } = await setup(t)
  t.equal((await call(sc, up, await idp.sign())).status, 200)
  const fetched = idp.fetches.jwks
  for (let i = 0; i < 5; i++) refused(t, await call(sc, up, await idp.sign({}, { kid: `bogus-${i}` })), 401, 'unauthorized')
  t.equal(idp.fetches.jwks, fetched, 'no fetch within the cool-down')
})

t.test('the provider down: cached keys keep verifying; with none cached, 503 auth_unavailable', async (t) => {
  const { idp, up, sc } = await setup(t, ', jwksUrl: "JWKS", jwksCacheMaxAge: 1s, jwksCooldown: 1s')
  const token = await idp.sign()
  t.equal((await call(sc, up, token)).status, 200)
  idp.mode = 'reset'
  await sleep(1100) // the cache is now stale: jose asks the provider, which fails
  t.equal((await call(sc, up, token)).status, 200, 'stale keys verify while the provider is down')
  t.equal((await call(sc, up, token)).status, 200, 'and, during the cool-down, without asking it again')
  const unknown = await idp.sign({}, { key: await idp.newKey(false) })
  const a = await call(sc, up, unknown)
  refused(t, a, 503, 'auth_unavailable')
  t.match(a.headers.get('retry-after'), /^[0-9]+$/)
  t.equal(a.headers.get('www-authenticate'), null)
  const fetches = await sc.metrics.registry.getSingleMetricAsString('pai_sidecar_auth_provider_fetches_total')
  t.match(fetches, 'kind="jwks",result="failure"} 1')
  t.ok(sc.logs.some((l) => l.msg?.toString().includes('could not be reached')))

  t.test('a sidecar that never fetched the keys answers 503 with Retry-After, and recovers', async (t) => {
    const up2 = await startUpstream()
    t.teardown(up2.close)
    const sc2 = await startSidecar(yaml(idp, `, jwksUrl: "${idp.jwksUrl}", jwksCooldown: 1s`), up2.url)
    t.teardown(sc2.close)
    refused(t, await call(sc2, up2, token), 503, 'auth_unavailable')
    refused(t, await call(sc2, up2, token), 503, 'auth_unavailable')
    idp.mode = 'error'
    await sleep(1100)
    refused(t, await call(sc2, up2, token), 503, 'auth_unavailable')
    idp.mode = 'up'
    await sleep(1100)
    t.equal((await call(sc2, up2, token)).status, 200)
  })
})

t.test('without jwksUrl, the keys are found through OIDC discovery', async (t) => {
  const { idp, up, sc } = await setup(t, '')
  t.equal((await call(sc, up, await idp.sign())).status, 200)
  t.equal(idp.fetches.discovery, 1)
  t.equal((await call(sc, up, await idp.sign())).status, 200)
  t.equal(idp.fetches.discovery, 1, 'discovered once')

  t.test('a discovery document naming another issuer is not used: 503', async (t) => {
    const up2 = await startUpstream()
    t.teardown(up2.close)
    idp.advertisedIssuer = 'https://evil.example'
    const sc2 = await startSidecar(yaml(idp, ', jwksCooldown: 1s'), up2.url)
    t.teardown(sc2.close)
    refused(t, await call(sc2, up2, await idp.sign()), 503, 'auth_unavailable')
    idp.advertisedIssuer = undefined
    await sleep(1100)
    t.equal((await call(sc2, up2, await idp.sign())).status, 200, 'tried again after the cool-down')
  })

  for (const mode of ['error', 'reset'] as const) {
    t.test(`a discovery document that cannot be had (${mode}): 503`, async (t) => {
      const up2 = await startUpstream()
      t.teardown(up2.close)
      const sc2 = await startSidecar(yaml(idp, ''), up2.url)
      t.teardown(sc2.close)
      idp.mode = mode
      t.teardown(() => { idp.mode = 'up' })
      refused(t, await call(sc2, up2, await idp.sign()), 503, 'auth_unavailable')
      const fetches = await sc2.metrics.registry.getSingleMetricAsString('pai_sidecar_auth_provider_fetches_total')
      t.match(fetches, 'kind="discovery",result="failure"} 1')
    })
  }
})

t.test('a reload that changes the auth block applies to the next request; one that keeps it keeps the cached keys', async (t) => {
  const { idp, up, sc } = await setup(t)
  const token = await idp.sign()
  t.equal((await call(sc, up, token)).status, 200)
  const fetched = idp.fetches.jwks
  sc.store.replace(snapshot(yaml(idp, `, jwksUrl: "${idp.jwksUrl}"`, 'log: { level: warn }'), up.url))
  t.equal((await call(sc, up, token)).status, 200)
  t.equal(idp.fetches.jwks, fetched, 'an unrelated change keeps the JWKS cache')
  sc.store.replace(snapshot(yaml(idp, `, jwksUrl: "${idp.jwksUrl}"`).replace(`[other-api, ${AUDIENCE}]`, '[other-api]'), up.url))
  refused(t, await call(sc, up, token), 401, 'unauthorized', INVALID)
  sc.store.replace(snapshot(yaml(idp, `, jwksUrl: "${idp.jwksUrl}"`).replace(/auth:[^]*$/, ''), up.url))
  t.equal((await call(sc, up, undefined)).status, 200, 'auth removed: off again')
})

t.test('auth.forwardCredentials: true forwards the token', async (t) => {
  const { idp, up } = await setup(t)
  const sc = await startSidecar(yaml(idp, `, jwksUrl: "${idp.jwksUrl}"`, '').replace('auth:', 'auth:\n  forwardCredentials: true'), up.url)
  t.teardown(sc.close)
  const token = await idp.sign()
  t.equal((await call(sc, up, token)).upstreamAuthorization, `Bearer ${token}`)
})

t.test('the rate limit counts each subject, not the IP', async (t) => {
  const { idp, up, sc } = await setup(t, ', jwksUrl: "JWKS"', 'limits: { rateLimit: { enabled: true, max: 1, window: 1h } }')
  t.equal((await call(sc, up, await idp.sign({ sub: 'alice' }))).status, 200)
  t.equal((await call(sc, up, await idp.sign({ sub: 'bob' }))).status, 200, 'another subject on the same IP')
  t.equal((await call(sc, up, await idp.sign({ sub: 'alice' }))).status, 429)
  t.equal((await call(sc, up, await idp.sign({ sub: undefined }))).status, 200, 'a token without sub counts against the IP')
})
