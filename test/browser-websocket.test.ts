// Cross-site WebSocket hijacking, as a browser sees it (docs/ARCHITECTURE.md, "WebSockets"). A page on
// any site may call `new WebSocket()`; CORS does not apply, the browser sends the page's Origin and the
// user's cookies. Only the sidecar's Origin check stands between such a page and the API.
import t from 'tap'
import type { Page } from 'playwright-core'
import { browserRig, browserSkip, openPage, sandboxedFrame } from './fixtures/browser.ts'
import { sample } from './fixtures/metrics.ts'
import { startSidecar } from './fixtures/sidecar.ts'
import { startWsUpstream } from './fixtures/ws.ts'

t.setTimeout(120_000)

interface SocketOutcome { opened: boolean, echoed: string | null, closeCode: number }

/** Open a WebSocket from the page, send one message, and report what the page could see. */
async function pageSocket (target: Pick<Page, 'evaluate'>, url: string): Promise<SocketOutcome> {
  return await target.evaluate(async (url) => await new Promise<SocketOutcome>((resolve) => {
    const ws = new WebSocket(url)
    let opened = false
    let echoed: string | null = null
    ws.onopen = () => { opened = true; ws.send('{"text":["hello"]}') }
    ws.onmessage = (event) => { echoed = String(event.data); ws.close(1000) }
    ws.onclose = (event) => { resolve({ opened, echoed, closeCode: event.code }) }
  }), url)
}

t.test('WebSockets from Chromium pages', { skip: browserSkip }, async (t) => {
  const { browser, pages } = await browserRig(t)
  const up = await startWsUpstream()
  t.teardown(up.close)
  const sc = await startSidecar(`
cors: { allowedOrigins: ["http://*.example.test:${pages.port}"] }
websocket: { enabled: true }
`, up.url)
  t.teardown(sc.close)
  const api = sc.url.replace('http://127.0.0.1', 'ws://sidecar.test')

  t.test('a page on an allowed origin opens a socket and talks to the API', async (t) => {
    const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/`)
    t.teardown(() => context.close())
    t.same(await pageSocket(page, `${api}/ws`), { opened: true, echoed: '{"text":["hello"]}', closeCode: 1000 })
    t.equal(up.handshakes.length, 1)
    t.equal(up.handshakes[0]?.headers.origin, pages.origin('app.example.test'), 'the browser sent the page origin')
  })

  for (const host of ['evilexample.test', 'example.test', 'app.example.test.evil.test']) {
    t.test(`a page on ${host} cannot open one, and the API never hears of it`, async (t) => {
      const { context, page } = await openPage(browser, `${pages.origin(host)}/`)
      t.teardown(() => context.close())
      const before = up.handshakes.length
      // The browser reports only 1006: a page cannot tell a refused origin from a network failure.
      t.same(await pageSocket(page, `${api}/ws`), { opened: false, echoed: null, closeCode: 1006 })
      t.equal(up.handshakes.length, before, 'no handshake reached the upstream')
    })
  }

  t.test('a sandboxed frame (Origin: null) cannot open one', async (t) => {
    const { context, page } = await openPage(browser, `${pages.origin('app.example.test')}/sandboxed`)
    t.teardown(() => context.close())
    const before = up.handshakes.length
    t.same(await pageSocket(await sandboxedFrame(page), `${api}/ws`), { opened: false, echoed: null, closeCode: 1006 })
    t.equal(up.handshakes.length, before)
  })

  t.test('the refusals are counted by outcome', async (t) => {
    t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'accepted' }), 1)
    t.equal(await sample(sc.metrics.websocketUpgrades, { outcome: 'cors_origin_denied' }), 4)
  })
})
