// What a page in a real browser observes: an allowed origin reads the answer after a
// preflight; every other origin — look-alikes, the apex, `null` — gets a rejected fetch, and the
// upstream receives nothing; credentials work only when the policy allows them.
import t from 'tap'
import { browserRig, browserSkip, jsonPost, openPage, pageFetch, sandboxedFrame, startPages } from './fixtures/browser.ts'
import { sample } from './fixtures/metrics.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { receivedWith } from './fixtures/upstream.ts'

// A browser on a 2-core machine shared with the rest of the suite can need more than tap's 30 s.
t.setTimeout(120_000)

t.test('CORS in Chromium', { skip: browserSkip }, async (t) => {
  const { browser, up, pages } = await browserRig(t)
  // One wildcard entry: the browser's own origins decide what it covers.
  const sc: TestSidecar = await startSidecar(`
cors:
  allowedOrigins: ["http://*.example.test:${pages.port}"]
  allowedHeaders: [content-type]
  exposedHeaders: [x-request-id]
routes: [{ path: /process/text, methods: [POST] }, { path: /leaky, methods: [POST] }]
`, up.url)
  t.teardown(sc.close)
  const api = sc.url.replace('127.0.0.1', 'sidecar.test')
  const preflights = async (result: string): Promise<number> => await sample(sc.metrics.preflights, { result }) ?? 0

  for (const host of ['app.example.test', 'a.b.example.test']) {
    t.test(`${host} (covered by *.example.test): a JSON POST succeeds after a preflight`, async (t) => {
      const { context, page } = await openPage(browser, `${pages.origin(host)}/`)
      t.teardown(() => context.close())
      const before = { preflights: await preflights('allowed'), received: up.received.length }
      const r = await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['Jane Doe'] }, { read: ['x-request-id', 'content-type'] }))
      t.match(r, { ok: true, status: 200 })
      if (!r.ok) return
      t.same(JSON.parse(r.body), { method: 'POST', url: '/process/text', bytes: 21 }, 'the body is readable')
      t.match(r.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an exposed header is readable')
      t.equal(await preflights('allowed'), before.preflights + 1, 'the browser sent one preflight')
      t.equal(up.received.length, before.received + 1, 'the preflight was not forwarded, the POST was')
      t.equal(receivedWith(up, r.headers['x-request-id'])?.headers.origin, pages.origin(host), 'the upstream got this request, with the page\'s Origin')
    })
  }

  t.test('a header the policy does not expose is invisible to the page; the upstream\'s own CORS headers are replaced', async (t) => {
    const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/`)
    t.teardown(() => context.close())
    // /leaky answers with x-upstream and with its own Access-Control-Allow-Origin: https://evil.example.
    const direct = await fetch(`${sc.url}/leaky`, { method: 'POST', headers: { origin: pages.origin('app.example.test') }, body: '{}' })
    t.equal(direct.headers.get('x-upstream'), 'yes', 'the header is in the response')
    const r = await pageFetch(page, `${api}/leaky`, jsonPost({}, { read: ['x-upstream', 'x-request-id'] }))
    t.match(r, { ok: true, status: 200, headers: { 'x-upstream': null, 'x-request-id': /./ } })
  })

  const denied: Array<[string, string]> = [
    ['the apex example.test (a wildcard never covers it)', 'example.test'],
    ['evilexample.test (a suffix look-alike)', 'evilexample.test'],
    ['app.example.test.evil.test (a prefix look-alike)', 'app.example.test.evil.test']
  ]
  for (const [name, host] of denied) {
    t.test(`${name}: fetch rejects and the upstream receives nothing`, async (t) => {
      const { context, page } = await openPage(browser, `${pages.origin(host)}/`)
      t.teardown(() => context.close())
      const before = { received: up.received.length, preflights: await preflights('denied'), requests: await sample(sc.metrics.corsDenials, { kind: 'request' }) ?? 0 }
      // Preflighted: the browser stops after the sidecar's 403.
      t.match(await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['Jane Doe'] })), { ok: false, error: /TypeError/ })
      t.equal(await preflights('denied'), before.preflights + 1, 'the sidecar denied the preflight')
      // A "simple" request has no preflight: the browser sends it, so the sidecar must refuse it itself.
      t.match(await pageFetch(page, `${api}/process/text`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'Jane Doe' }), { ok: false, error: /TypeError/ })
      t.equal(await sample(sc.metrics.corsDenials, { kind: 'request' }), before.requests + 1, 'the sidecar refused the simple request')
      t.equal(up.received.length, before.received, 'nothing reached the upstream')
    })
  }

  t.test('a sandboxed iframe (Origin: null): fetch rejects and the upstream receives nothing', async (t) => {
    const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/sandboxed`)
    t.teardown(() => context.close())
    const frame = await sandboxedFrame(page)
    t.equal(await frame.evaluate('self.origin'), 'null', 'the frame has an opaque origin')
    const before = { received: up.received.length, logs: sc.logs.length }
    t.match(await pageFetch(frame, `${api}/process/text`, jsonPost({ text: ['Jane Doe'] })), { ok: false, error: /TypeError/ })
    t.match(await pageFetch(frame, `${api}/process/text`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'Jane Doe' }), { ok: false, error: /TypeError/ })
    t.equal(up.received.length, before.received, 'nothing reached the upstream')
    // Both reached the sidecar from the null origin, and both were refused there.
    t.match(sc.logs.slice(before.logs).filter((l) => l.msg === 'request'), [
      { preflight: true, status: 403, cors: 'denied' },
      { preflight: false, status: 403, cors: 'denied', error: 'cors_origin_denied' }
    ])
  })

  t.test('the same page with a same-site but unlisted port is refused too (an origin includes its port)', async (t) => {
    const other = await startPages()
    t.teardown(other.close)
    const { context, page } = await openPage(browser, `${other.origin('app.example.test')}/`)
    t.teardown(() => context.close())
    const before = up.received.length
    t.match(await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'] })), { ok: false })
    t.equal(up.received.length, before)
  })
})

// Credentialed requests need Access-Control-Allow-Credentials: true on the preflight and the answer.
// Page and API are both on localhost (different ports: cross-origin but same-site), so the
// browser's default SameSite=Lax cookie is one it would send.
t.test('credentials: \'include\' in Chromium', { skip: browserSkip }, async (t) => {
  const { browser, up, pages } = await browserRig(t)

  for (const allow of [false, true]) {
    t.test(`allowCredentials: ${allow}`, async (t) => {
      const sc = await startSidecar(`
cors: { allowedOrigins: ["http://localhost:${pages.port}"], allowCredentials: ${allow} }
routes: [{ path: /process/text, methods: [POST] }]
`, up.url)
      t.teardown(sc.close)
      const api = sc.url.replace('127.0.0.1', 'localhost')
      const { context, page } = await openPage(browser, `${pages.origin('localhost')}/`)
      t.teardown(() => context.close())
      await context.addCookies([{ name: 'session', value: 'cookie-of-jane-doe', url: api }])
      up.received.length = 0

      const included = await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'] }, { credentials: 'include' }))
      if (allow) {
        t.match(included, { ok: true, status: 200 }, 'the credentialed request succeeds')
        t.equal(up.received[0]?.headers.cookie, 'session=cookie-of-jane-doe', 'with the cookie')
      } else {
        t.match(included, { ok: false, error: /TypeError/ }, 'the browser refuses the preflight without Allow-Credentials')
        t.equal(up.received.length, 0, 'nothing reached the upstream')
      }
      // Without credentials the same call works under both policies, and carries no cookie.
      up.received.length = 0
      t.match(await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'] }, { credentials: 'omit' })), { ok: true, status: 200 })
      t.equal(up.received.length, 1)
      t.equal(up.received[0]?.headers.cookie, undefined)
    })
  }
})
