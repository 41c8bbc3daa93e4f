// Personal data passes through this proxy on its way to be redacted: none of it may reach a log line,
// at any level, whatever happens to the request (docs/ARCHITECTURE.md, "The request path", step 9).
import t from 'tap'
import { request } from 'node:http'
import { startUpstream } from './fixtures/upstream.ts'
import { startSidecar } from './fixtures/sidecar.ts'

const PII = ['Jane Doe', 'jane.doe@example.com', '+1-416-555-0199', '4111111111111111', 'Bearer tok-jane-doe', 'sid=jane-doe', 'key-jane-doe', 'cookie-of-jane-doe']

t.test('no body, query string, credential header or cookie appears in any log line at trace level', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
cors: { allowedOrigins: [https://app.example.com] }
routes: [{ path: /process/text, methods: [POST] }, { path: /echo, methods: [POST] }, { path: /reset, methods: [POST] }, { path: /leaky, methods: [GET] }]
limits: { maxBodyBytes: 100 }
`, up.url, 'trace')
  t.teardown(sc.close)
  const secrets = { authorization: 'Bearer tok-jane-doe', cookie: 'sid=jane-doe', 'x-api-key': 'key-jane-doe' }
  const body = JSON.stringify({ text: ['Jane Doe, jane.doe@example.com, +1-416-555-0199, card 4111111111111111'] })
  const query = '?name=Jane%20Doe&email=jane.doe@example.com'
  const origin = 'https://app.example.com'
  await fetch(`${sc.url}/echo${query}`, { method: 'POST', headers: { ...secrets, origin, 'content-type': 'application/json' }, body: body.slice(0, 90) })
  await fetch(`${sc.url}/process/text${query}`, { method: 'POST', headers: { ...secrets, origin }, body })
  await fetch(`${sc.url}/reset${query}`, { method: 'POST', headers: { ...secrets, origin }, body: body.slice(0, 90) })
  await fetch(`${sc.url}/process/text${query}`, { method: 'POST', headers: { ...secrets, origin: 'https://evil.example' }, body: body.slice(0, 90) })
  await fetch(`${sc.url}/nowhere/jane.doe@example.com${query}`, { headers: secrets })
  await fetch(`${sc.url}/process/text${query}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  await fetch(`${sc.url}/leaky${query}`, { headers: { ...secrets, origin } })
  // A request target the router cannot decode, with personal data in it.
  await new Promise<void>((resolve) => {
    const u = new URL(sc.url)
    request({ host: u.hostname, port: u.port, path: '/x/Jane%20Doe/%zz?email=jane.doe@example.com', headers: secrets }, (res) => { res.resume(); res.on('end', resolve) }).end()
  })
  const all = sc.logs.map((l) => JSON.stringify(l)).join('\n')
  t.ok(sc.logs.length >= 8, `${sc.logs.length} log lines were written`)
  for (const secret of PII) t.notOk(all.includes(secret), `"${secret}" is in no log line`)
  t.notOk(all.includes('jane.doe%40example.com') || all.includes('email='), 'no query string in any form')
})

t.test('with authentication, no token, key, claim or identity reaches a log line: the outcome and a reference at most', async (t) => {
  const { createHash } = await import('node:crypto')
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const { startIdp, AUDIENCE } = await import('./fixtures/idp.ts')
  const idp = await startIdp()
  t.teardown(idp.close)
  const file = join(mkdtempSync(join(tmpdir(), 'pai-pii-keys-')), 'keys')
  writeFileSync(file, `${createHash('sha256').update('key-jane-doe').digest('hex')} jane-doe-label\n`)
  const up = await startUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
cors: { allowedOrigins: [https://app.example.com], allowedHeaders: [authorization] }
routes: [{ path: /process/text, methods: [POST] }]
auth: { apiKeys: { file: ${file} }, jwt: { issuer: "${idp.issuer}", audiences: [${AUDIENCE}], jwksUrl: "${idp.jwksUrl}", requiredClaims: { tenant: acme } } }
`, up.url, 'trace')
  t.teardown(sc.close)
  const claims = { sub: 'jane.doe@example.com', name: 'Jane Doe', tenant: 'acme' }
  const good = await idp.sign(claims)
  const tokens = [good, await idp.sign({ ...claims, exp: 1 }), await idp.sign({ ...claims, tenant: 'Jane Doe corp' }), `${good.slice(0, -4)}AAAA`]
  const origin = 'https://app.example.com'
  for (const token of tokens) await (await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin, authorization: `Bearer ${token}` }, body: '{}' })).arrayBuffer()
  for (const key of ['key-jane-doe', 'key-jane-doe-wrong']) await (await fetch(`${sc.url}/process/text`, { method: 'POST', headers: { origin, 'x-api-key': key }, body: '{}' })).arrayBuffer()
  const all = sc.logs.map((l) => JSON.stringify(l)).join('\n')
  t.ok(sc.logs.filter((l) => l.auth !== undefined).length >= 6, 'every request logs its outcome')
  for (const secret of [...PII, 'jane-doe-label', 'acme', ...tokens.map((tok) => tok.split('.')[1] as string), ...tokens.map((tok) => tok.slice(-16))]) {
    t.notOk(all.includes(secret), `"${secret.slice(0, 24)}" is in no log line`)
  }
  t.ok(sc.logs.some((l) => typeof l.authRef === 'string'), 'an identity reference is')
})
