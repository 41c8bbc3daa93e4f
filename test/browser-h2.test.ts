// Chromium on an HTTPS origin calls the HTTPS sidecar (README, "HTTPS and HTTP/2"): a JSON POST that
// needs a preflight, both over HTTP/2 on one connection. The test CA is trusted by this browser only
// (--ignore-certificate-errors-spki-list with the leaf's key). The page reads nextHopProtocol from
// Resource Timing (the test's upstream sends Timing-Allow-Origin, without which a cross-origin
// entry is opaque); the preflight, which Resource Timing does not list, is seen through the
// DevTools protocol's Network events, as the browser's own network panel shows it.
import t from 'tap'
import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { chromium } from 'playwright-core'
import { readPair } from '../sidecar/tls.ts'
import { browserSkip, launchOptions } from './fixtures/browser.ts'
import { makeCa } from './fixtures/certs.ts'
import { startSidecar } from './fixtures/sidecar.ts'

t.setTimeout(120_000)

t.test('Chromium on an HTTPS page: the preflight and the POST to the HTTPS sidecar both go over h2', { skip: browserSkip }, async (t) => {
  const ca = await makeCa()
  t.teardown(ca.remove)
  const leaf = await ca.leaf('browser', 2, ['app.example.test', 'sidecar.test'])
  const pair = await readPair({ certFile: leaf.certFile, keyFile: leaf.keyFile, minVersion: 'TLSv1.2' })
  if (!pair.ok) throw new Error(pair.errors.join('\n'))

  // The page, over HTTPS with the same certificate.
  const pages = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><meta charset="utf-8"><title>page</title><p>page</p>')
  })
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { pages.closeAllConnections(); pages.close() })
  const pageOrigin = `https://app.example.test:${(pages.address() as AddressInfo).port}`
  // The API: answers JSON and lets the page read its timing.
  const api = createServer((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'timing-allow-origin': pageOrigin }).end('{"ok":true}') })
  })
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { api.closeAllConnections(); api.close() })
  const sc = await startSidecar(`cors: { allowedOrigins: ["${pageOrigin}"], allowedHeaders: [content-type] }\nroutes: [{ path: /process/text, methods: [POST] }]\n`, `http://127.0.0.1:${(api.address() as AddressInfo).port}`, 'silent', { tls: pair.pair })
  t.teardown(sc.close)
  const target = `${sc.url.replace('127.0.0.1', 'sidecar.test')}/process/text`

  const options = launchOptions()
  const browser = await chromium.launch({ ...options, args: [...(options?.args ?? []), `--ignore-certificate-errors-spki-list=${ca.spki(leaf.cert)}`] })
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  const seen: { type: string, method: string, url: string, protocol: string | undefined, status: number }[] = []
  const methods = new Map<string, string>()
  cdp.on('Network.requestWillBeSent', (e) => { methods.set(e.requestId, e.request.method) })
  cdp.on('Network.responseReceived', (e) => {
    seen.push({ type: e.type, method: methods.get(e.requestId) ?? '', url: e.response.url, protocol: e.response.protocol, status: e.response.status })
  })
  await page.goto(`${pageOrigin}/`)
  const result = await page.evaluate(async (url) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":["Jane"]}' })
    const body = await res.text()
    const entry = performance.getEntriesByName(url)[0] as { nextHopProtocol?: string } | undefined
    return { status: res.status, body, protocol: entry?.nextHopProtocol }
  }, target)
  t.same(result, { status: 200, body: '{"ok":true}', protocol: 'h2' }, 'the page reads the answer, fetched over HTTP/2')
  const preflight = seen.find((s) => s.type === 'Preflight' || (s.method === 'OPTIONS' && s.url === target))
  t.match(preflight, { protocol: 'h2', status: 204 }, 'the preflight went over HTTP/2 too')
  t.match(seen.find((s) => s.method === 'POST' && s.url === target), { protocol: 'h2', status: 200 })
})
