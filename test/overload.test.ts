// Overload: 500 concurrent clients against maxConcurrent 4 and a slow upstream (docs/OPERATIONS.md). The GPU
// must never see more than 4 at once; the excess is refused with 503 in bounded time; memory stays flat.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { startSidecar } from './fixtures/sidecar.ts'

const CLIENTS = 500
const MAX = 4

t.test('500 clients, maxConcurrent 4: the upstream never sees more than 4, the rest get 503 quickly', async (t) => {
  let current = 0
  let peak = 0
  let served = 0
  const upstream = createServer((req, res) => {
    current++
    peak = Math.max(peak, current)
    req.resume()
    setTimeout(() => {
      current--
      served++
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    }, 100)
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const sc = await startSidecar(`
upstream: { maxConcurrent: ${MAX}, queue: { size: 16, timeout: 500ms } }
cors: { allowedOrigins: [https://app.example.com] }
routes: [{ path: /process/text, methods: [POST] }]
`, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, 'warn')
  t.teardown(sc.close)
  // Every move of the upstream_in_flight gauge, as the sidecar makes it: it follows the upstream
  // exchange (admission slot), never the client's connection, so it can never pass maxConcurrent.
  const gauge = sc.metrics.upstreamInFlight
  let inFlight = 0
  let gaugePeak = 0
  // The sidecar moves it by one, without labels.
  const inc = gauge.inc.bind(gauge) as () => void
  const dec = gauge.dec.bind(gauge) as () => void
  gauge.inc = (() => { inFlight++; gaugePeak = Math.max(gaugePeak, inFlight); inc() }) as typeof gauge.inc
  gauge.dec = (() => { inFlight--; dec() }) as typeof gauge.dec
  const dispatcher = new Agent({ connections: CLIENTS })
  t.teardown(() => dispatcher.close())

  const rssBefore = process.memoryUsage().rss
  let rssPeak = rssBefore
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss) }, 20)
  const one = async (): Promise<{ status: number; ms: number; code?: string; retryAfter: string | null; acao: string | null }> => {
    const start = performance.now()
    const res = await fetch(`${sc.url}/process/text`, {
      method: 'POST', body: '{"text":["x"]}', headers: { origin: 'https://app.example.com', 'content-type': 'application/json' }, dispatcher
    } as RequestInit)
    const body = await res.json() as { error?: { code: string } }
    return { status: res.status, ms: performance.now() - start, code: body.error?.code, retryAfter: res.headers.get('retry-after'), acao: res.headers.get('access-control-allow-origin') }
  }
  const results = await Promise.all(Array.from({ length: CLIENTS }, one))
  clearInterval(sampler)

  const ok = results.filter((r) => r.status === 200)
  const refused = results.filter((r) => r.status === 503)
  t.equal(ok.length + refused.length, CLIENTS, 'every client got 200 or 503')
  t.ok(peak <= MAX, `the upstream saw at most ${MAX} at once (${peak})`)
  t.ok(gaugePeak <= MAX, `upstream_in_flight never passed maxConcurrent (peak ${gaugePeak})`)
  t.equal(inFlight, 0, 'and is back to 0 once every exchange ended')
  t.equal((await gauge.get()).values[0]?.value, 0, 'the exported gauge too')
  t.equal(served, ok.length)
  t.ok(ok.length >= MAX, `${ok.length} were served`)
  t.ok(refused.every((r) => (r.code === 'queue_full' || r.code === 'queue_timeout') && r.retryAfter === '1' && r.acao === 'https://app.example.com'),
    '503s are queue_full/queue_timeout with Retry-After and the CORS headers')
  // A refused request is refused by the queue (full, or after queue.timeout), never held until the
  // upstream's requestTimeout (that would be a 504): the codes above say so without a clock. The
  // latencies are only reported (bench/ holds performance figures).
  const latencies = refused.map((r) => r.ms).sort((a, b) => a - b)
  const p99 = latencies[Math.floor(latencies.length * 0.99)] as number
  const growth = (rssPeak - rssBefore) / 1024 / 1024
  t.ok(growth < 150, `peak RSS grew ${growth.toFixed(1)} MiB`)
  t.comment(`overload: ${ok.length} served, ${refused.filter((r) => r.code === 'queue_full').length} queue_full, ` +
    `${refused.filter((r) => r.code === 'queue_timeout').length} queue_timeout; upstream peak concurrency ${peak}; ` +
    `503 latency p50 ${(latencies[Math.floor(latencies.length / 2)] as number).toFixed(0)} ms, p99 ${p99.toFixed(0)} ms; ` +
    `RSS ${(rssBefore / 1048576).toFixed(0)} → peak ${(rssPeak / 1048576).toFixed(0)} MiB (clients, sidecar and upstream in one process)`)
})
