// Authentication as a page in Chromium sees it: with `authorization` in cors.allowedHeaders, a page on
// an allowed origin sends its bearer token (after a preflight the sidecar answers without asking for
// credentials) and reads the answer; without a token, or with a bad one, it reads the 401, its JSON
// and its WWW-Authenticate (exposed), so it can refresh the token. The upstream sees only the good one.
import t from 'tap'
import { browserRig, browserSkip, jsonPost, openPage, pageFetch } from './fixtures/browser.ts'
import { AUDIENCE, startIdp } from './fixtures/idp.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { receivedWith } from './fixtures/upstream.ts'

t.setTimeout(120_000)

t.test('a bearer token from a page in Chromium', { skip: browserSkip }, async (t) => {
  const { browser, up, pages } = await browserRig(t)
  const idp = await startIdp()
  t.teardown(idp.close)
  const sc = await startSidecar(`
cors:
  allowedOrigins: ["${pages.origin('app.example.test')}"]
  allowedHeaders: [content-type, authorization]
  exposedHeaders: [x-request-id, www-authenticate]
routes: [{ path: /process/text, methods: [POST] }]
auth: { jwt: { issuer: "${idp.issuer}", audiences: [${AUDIENCE}], jwksUrl: "${idp.jwksUrl}" } }
`, up.url)
  t.teardown(sc.close)
  const api = `${sc.url.replace('127.0.0.1', 'sidecar.test')}/process/text`
  const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/`)
  t.teardown(() => context.close())
  const read = ['x-request-id', 'www-authenticate']

  t.test('with a valid token: 200, and the upstream got the request without the token', async (t) => {
    const r = await pageFetch(page, api, jsonPost({ text: ['Jane Doe'] }, { headers: { authorization: `Bearer ${await idp.sign()}` }, read }))
    t.match(r, { ok: true, status: 200 })
    if (!r.ok) return
    const seen = receivedWith(up, r.headers['x-request-id'])
    t.ok(seen, 'forwarded')
    t.equal(seen?.headers.authorization, undefined)
  })

  t.test('without a token: the page reads the 401', async (t) => {
    const before = up.received.length
    const r = await pageFetch(page, api, jsonPost({ text: ['Jane Doe'] }, { read }))
    t.match(r, { ok: true, status: 401, headers: { 'www-authenticate': 'Bearer realm="pai-cors-sidecar"' } })
    if (r.ok) t.match(JSON.parse(r.body), { error: { code: 'unauthorized' } })
    t.equal(up.received.length, before, 'nothing reached the upstream')
  })

  t.test('with an expired token: the page reads the 401 and its invalid_token', async (t) => {
    const r = await pageFetch(page, api, jsonPost({ text: ['Jane Doe'] }, { headers: { authorization: `Bearer ${await idp.sign({ exp: 1 })}` }, read }))
    t.match(r, { ok: true, status: 401, headers: { 'www-authenticate': 'Bearer realm="pai-cors-sidecar", error="invalid_token"' } })
  })
})
