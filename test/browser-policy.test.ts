// How policy changes reach a real browser: Access-Control-Max-Age lets Chromium skip the
// second preflight, and a policy changed by hot reload applies to the browser's next request.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { openFileSource } from '../sidecar/config/file-source.ts'
import { loadConfigText } from '../sidecar/config/load.ts'
import { serve } from '../sidecar/server.ts'
import { browserRig, browserSkip, jsonPost, openPage, pageFetch } from './fixtures/browser.ts'
import { sample } from './fixtures/metrics.ts'
import { startSidecar } from './fixtures/sidecar.ts'

// A browser on a 2-core machine shared with the rest of the suite can need more than tap's 30 s.
t.setTimeout(120_000)

t.test('policy in Chromium', { skip: browserSkip }, async (t) => {
  const { browser, up, pages } = await browserRig(t)
  const app = pages.origin('app.example.test')

  // maxAge 0 is the control: without it Chromium would cache for its default 5 s, and with it the
  // count must go up, so the first case proves the cache was used.
  for (const [maxAge, expected] of [[600, 1], [0, 2]] as const) {
    t.test(`maxAge ${maxAge}: two identical requests send ${expected} preflight(s)`, async (t) => {
      const sc = await startSidecar(`
cors: { allowedOrigins: ["${app}"], maxAge: ${maxAge} }
routes: [{ path: /process/text, methods: [POST] }]
`, up.url)
      t.teardown(sc.close)
      const { context, page } = await openPage(browser, `${app}/`)
      t.teardown(() => context.close())
      const api = sc.url.replace('127.0.0.1', 'sidecar.test')
      for (let i = 0; i < 2; i++) t.match(await pageFetch(page, `${api}/process/text`, jsonPost({ text: ['x'] })), { ok: true, status: 200 })
      t.equal(await sample(sc.metrics.preflights, { result: 'allowed' }), expected, 'preflights counted at the sidecar')
      t.equal(await sample(sc.metrics.requests, { route: '/process/text', status_class: '2xx' }), 2)
    })
  }

  t.test('a policy change applied by hot reload takes effect for the next browser request', async (t) => {
    const other = pages.origin('new.example.test')
    const config = (origin: string): string => `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
cors: { allowedOrigins: ["${origin}"] }
routes: [{ path: /process/text, methods: [POST] }]
shutdown: { delay: 0s }
`
    const dir = t.testdir({ 'config.yaml': config(app) })
    const path = join(dir, 'config.yaml')
    const opened = await openFileSource(path, { debounceMs: 20 })
    if (!opened.ok) throw new Error(opened.errors.join('\n'))
    const initial = loadConfigText(opened.source.text, opened.source.name, { upstream: up.url })
    if (!initial.ok) throw new Error(initial.errors.join('\n'))
    const running = await serve(initial.snapshot, {
      version: '0.0.0-test',
      destination: new Writable({ write (_c, _e, cb) { cb() } }),
      overrides: { upstream: up.url },
      source: opened.source
    })
    t.teardown(async () => { running.shutdown('test'); await running.done })
    const api = running.publicUrl.replace('127.0.0.1', 'sidecar.test')
    const fromApp = await openPage(browser, `${app}/`)
    t.teardown(() => fromApp.context.close())
    const fromOther = await openPage(browser, `${other}/`)
    t.teardown(() => fromOther.context.close())
    const post = jsonPost({ text: ['x'] })

    t.match(await pageFetch(fromApp.page, `${api}/process/text`, post), { ok: true, status: 200 })
    t.match(await pageFetch(fromOther.page, `${api}/process/text`, post), { ok: false }, 'not allowed yet')

    // What an editor or the kubelet does: the file changes, the watcher reloads it.
    writeFileSync(path, config(other))
    const generation = async (): Promise<number> => {
      const body = await (await fetch(`${running.adminUrl}/readyz`)).json() as { checks: { config: { generation: number } } }
      return body.checks.config.generation
    }
    while (await generation() < 2) await sleep(20)

    // (The health poller also calls the upstream: count only the forwarded POSTs.)
    const posts = (): number => up.received.filter((r) => r.url === '/process/text').length
    const before = posts()
    t.match(await pageFetch(fromOther.page, `${api}/process/text`, post), { ok: true, status: 200 }, 'the added origin works at once')
    // Chromium may still hold app's preflight (5 s default), so it may skip it: the POST itself is refused.
    t.match(await pageFetch(fromApp.page, `${api}/process/text`, post), { ok: false }, 'the removed origin is refused at once')
    t.equal(posts(), before + 1, 'only the allowed request reached the upstream')
  })
})
