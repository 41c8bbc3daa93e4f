// Errors the sidecar generates itself carry the CORS headers of an allowed request (README), so a
// page in a real browser reads them — status and JSON code — instead of an opaque CORS failure.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { browserRig, browserSkip, jsonPost, openPage, pageFetch } from './fixtures/browser.ts'
import { startSidecar } from './fixtures/sidecar.ts'

// A browser on a 2-core machine shared with the rest of the suite can need more than tap's 30 s.
t.setTimeout(120_000)

t.test('sidecar errors are readable by the page', { skip: browserSkip }, async (t) => {
  const { browser, up, pages } = await browserRig(t)
  // One upstream slot and no queue: a second request while one is in flight is refused at once.
  const sc = await startSidecar(`
cors: { allowedOrigins: ["${pages.origin('app.example.test')}"], exposedHeaders: [x-request-id, retry-after] }
routes: [{ path: /process/text, methods: [POST] }, { path: /hang, methods: [POST] }]
upstream: { maxConcurrent: 1, queue: { size: 0 } }
limits: { maxBodyBytes: 1024 }
`, up.url)
  t.teardown(sc.close)
  const api = sc.url.replace('127.0.0.1', 'sidecar.test')
  const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/`)
  t.teardown(() => context.close())
  const code = (body: string): unknown => (JSON.parse(body) as { error: { code: string } }).error.code

  t.test('413 payload_too_large', async (t) => {
    const before = up.received.length
    const r = await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'.repeat(2048)] }))
    t.match(r, { ok: true, status: 413 })
    if (r.ok) t.equal(code(r.body), 'payload_too_large')
    t.equal(up.received.length, before, 'never forwarded')
  })

  t.test('404 not_found for a route that is not configured', async (t) => {
    const r = await pageFetch(page, `${api}/diagnostics`, jsonPost({}))
    t.match(r, { ok: true, status: 404 })
    if (r.ok) t.equal(code(r.body), 'not_found')
  })

  t.test('405 method_not_allowed', async (t) => {
    const r = await pageFetch(page, `${api}/process/text`, { method: 'GET' })
    t.match(r, { ok: true, status: 405 })
    if (r.ok) t.equal(code(r.body), 'method_not_allowed')
  })

  t.test('503 queue_full, with an exposed Retry-After', async (t) => {
    // The page occupies the only slot with a request the upstream never answers …
    await page.evaluate((url) => {
      const c = new AbortController();
      (globalThis as unknown as { hang: AbortController }).hang = c
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: c.signal }).catch(() => {})
    }, `${api}/hang`)
    while (!up.received.some((r) => r.url === '/hang')) await sleep(20)
    // … and the next one is refused, readably.
    const r = await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'] }, { read: ['retry-after'] }))
    t.match(r, { ok: true, status: 503, headers: { 'retry-after': '1' } })
    if (r.ok) t.equal(code(r.body), 'queue_full')
    await page.evaluate(() => { (globalThis as unknown as { hang: AbortController }).hang.abort() })
  })
})
