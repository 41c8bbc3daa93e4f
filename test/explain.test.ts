// `explain` answers "why does my browser say CORS error?" with the live decision code.
import t from 'tap'
import { explain, formatExplanation, type ExplainRequest } from '../sidecar/cli/explain.ts'
import { snapshot } from './fixtures/sidecar.ts'

const snap = snapshot(`
cors:
  allowedOrigins: [https://app.example.com, "https://*.example.com", "http://localhost:*"]
  allowedHeaders: ["*"]
  maxAge: 60
routes: [{ path: /process/text, methods: [POST] }]
`)
const req = (r: Partial<ExplainRequest>): ExplainRequest => ({ origin: 'https://app.example.com', method: 'POST', headers: [], privateNetwork: false, path: undefined, ...r })
const run = (r: Partial<ExplainRequest>, s = snap) => explain(s, req(r))

t.test('a simple request needs no preflight and is allowed', async (t) => {
  const e = run({ path: '/process/text' })
  t.equal(e.preflightNeeded, false)
  t.equal(e.verdict, 'allowed')
  t.equal(e.route, '/process/text')
  t.equal(e.actual?.status, undefined, 'forwarded')
  const text = formatExplanation(e)
  t.match(text, /1\. Preflight: not needed/)
  t.match(text, /2\. Request: ALLOWED → forwarded to the upstream \(route \/process\/text\)/)
  t.match(text, /access-control-allow-origin: https:\/\/app\.example\.com/)
})

t.test('a non-safelisted method or header needs a preflight; its headers are shown', async (t) => {
  const e = run({ headers: ['content-type'], privateNetwork: false })
  t.equal(e.preflightNeeded, true)
  t.equal(e.preflight?.status, 204)
  t.match(formatExplanation(e), /access-control-max-age: 60/)
})

t.test('authorization is not covered by "*", and the hint says so', async (t) => {
  const e = run({ headers: ['authorization'] })
  t.equal(e.verdict, 'denied')
  t.equal(e.actual, undefined, 'after a denied preflight the browser never sends the request')
  const text = formatExplanation(e)
  t.match(text, /authorization is not covered by "\*"/)
  t.match(text, /Hint: to allow it, add "authorization" to cors\.allowedHeaders/)
})

t.test('an origin that differs only in scheme or port gets a pointed hint', async (t) => {
  const e = run({ origin: 'http://app.example.com' })
  t.equal(e.verdict, 'denied')
  t.equal(e.actual?.status, 403)
  t.match(e.hints.join('\n'), /allowedOrigins has "https:\/\/app\.example\.com": the scheme and port must match exactly too/)
  t.match(e.hints.join('\n'), /add "http:\/\/app\.example\.com" to cors\.allowedOrigins/)
  const other = run({ origin: 'https://elsewhere.test' })
  t.same(other.hints, ['to allow it, add "https://elsewhere.test" to cors.allowedOrigins'])
})

t.test('malformed origins, methods and private network requests are explained', async (t) => {
  t.match(run({ origin: 'https://app.example.com/' }).hints.join(), /without a path, trailing slash or default port/)
  t.match(run({ method: 'DELETE' }).hints.join(), /add "DELETE" to cors\.allowedMethods/)
  const pna = run({ privateNetwork: true })
  t.equal(pna.preflightNeeded, true)
  t.match(pna.hints.join(), /allowPrivateNetwork: true/)
  t.match(formatExplanation(pna), /to a private network/)
  t.equal(run({ headers: ['bad header'] }).verdict, 'denied', 'an invalid header name is a denied preflight')
  t.same(run({ origin: 'null' }).hints, [], 'no hint can make null allowed')
})

t.test('routes: 404, 405 and unsafe paths are reported with their status', async (t) => {
  t.equal(run({ path: '/metrics' }).actual?.status, 404)
  t.match(formatExplanation(run({ path: '/metrics' })), /2\. Request: ALLOWED → 404 from the sidecar\n/)
  t.equal(run({ path: '/process/text', method: 'GET' }).actual?.status, 405)
  t.equal(run({ path: '/process/text', method: 'GET' }).route, '/process/text')
  t.equal(run({ path: '/a/../metrics' }).actual?.status, 400)
})

t.test('no Origin: not a CORS request', async (t) => {
  const e = run({ origin: undefined, path: '/process/text' })
  t.equal(e.verdict, 'not_cors')
  t.equal(e.preflightNeeded, false)
  const text = formatExplanation(e)
  t.match(text, /not a CORS request/)
  t.match(text, /from origin \(none\)/)
  t.notMatch(text, /1\. Preflight/)
})

t.test('with enforce: false a denied request is forwarded without CORS headers', async (t) => {
  const open = snapshot('cors: { allowedOrigins: [https://app.example.com], enforce: false }')
  const e = run({ origin: 'https://other.test' }, open)
  t.equal(e.verdict, 'denied')
  t.equal(e.actual?.status, undefined)
  t.match(formatExplanation(e), /cors\.enforce is false: forwarded without CORS headers/)
})

t.test('a same-origin request is allowed, as live traffic treats it, and needs no CORS headers', async (t) => {
  const strict = snapshot('cors: { allowedOrigins: [https://app.example.com] }\nroutes: [{ path: /process/text, methods: [POST] }]')
  const e = run({ origin: 'https://api.example.com', selfOrigin: 'https://api.example.com', path: '/process/text' }, strict)
  t.equal(e.verdict, 'allowed')
  t.equal(e.actual?.decision.outcome, 'same_origin')
  t.equal(e.actual?.status, undefined, 'forwarded')
  t.same(e.actual?.decision.headers, {}, 'no CORS headers')
  t.equal(run({ origin: 'https://api.example.com', path: '/process/text' }, strict).verdict, 'denied', 'from another origin, the same request is denied')
})

t.test('every refusal carries the status and code live traffic gets', async (t) => {
  t.match(run({ path: '/metrics' }).actual, { status: 404, code: 'not_found' })
  t.match(run({ path: '/process/text', method: 'GET' }).actual, { status: 405, code: 'method_not_allowed' })
  t.match(run({ path: '/a/../metrics' }).actual, { status: 400, code: 'bad_path' })
  t.match(run({ origin: 'https://elsewhere.test', path: '/process/text' }).actual, { status: 403, code: 'cors_origin_denied' })
  t.match(run({ headers: ['authorization'] }).preflight, { status: 403, code: 'cors_preflight_denied' })
  t.match(run({ headers: ['x-a'] }).preflight, { status: 204, code: undefined })
})

t.test('with authentication, explain says that a route needs credentials and what a denied request gets', async (t) => {
  const jwt = snapshot(`
cors: { allowedOrigins: [https://app.example.com], allowedHeaders: [content-type] }
routes: [{ path: /process/text, methods: [POST] }]
auth: { realm: deid, jwt: { issuer: "https://login.example.com/", audiences: [deid-api], requiredClaims: { scope: "deid:process" } } }
`)
  const e = run({ path: '/process/text' }, jwt)
  t.same(e.auth, { methods: ['jwt'], denied: { status: 401, code: 'unauthorized', wwwAuthenticate: 'Bearer realm="deid", error="invalid_token"' }, requiredClaims: { scope: 'deid:process' } })
  const text = formatExplanation(e)
  t.match(text, /Credentials: required before forwarding: a JWT access token \(Authorization: Bearer …\)\./)
  t.match(text, /without valid ones: 401 unauthorized, with the CORS headers above/)
  t.match(text, /a valid token without scope holding "deid:process": 403 forbidden/)
  t.match(text, /503 auth_unavailable with Retry-After/)
  t.match(e.hints, [/add --header authorization/])
  t.match(run({ path: '/process/text', headers: ['Authorization'] }, jwt).hints, [/add "authorization" to cors\.allowedHeaders/])
  t.equal(run({ path: '/nowhere' }, jwt).auth, undefined, 'a request the gate refuses never gets that far')
  t.same(run({ path: '/process/text', origin: undefined }, jwt).hints, [], 'no page, no preflight hint')

  const keys = snapshot(`
cors: { allowedOrigins: [https://app.example.com], allowedHeaders: [content-type, authorization] }
auth: { jwt: { issuer: "https://login.example.com/", audiences: [deid-api] } }
`)
  t.same(run({ path: '/process/text', headers: ['authorization'] }, keys).hints, [], 'authorization allowed: nothing to add')
})

t.test('API keys only', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const file = join(mkdtempSync(join(tmpdir(), 'pai-explain-')), 'keys')
  writeFileSync(file, `${'c'.repeat(64)}\n`)
  const e = run({ path: '/process/text' }, snapshot(`cors: { allowedOrigins: [https://app.example.com] }\nauth: { apiKeys: { file: ${file} } }`))
  t.same(e.auth?.methods, ['api_key'])
  t.same(e.hints, [])
  const text = formatExplanation(e)
  t.match(text, /an API key \(x-api-key, or Authorization: Bearer …\)/)
  t.notMatch(text, /auth_unavailable|forbidden/)
})
