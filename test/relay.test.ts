// The relay's edges (sidecar/http/relay.ts) against real upstreams on loopback: informational
// answers, a client that leaves before its request reached a connection; and the header lists both
// ways (sidecar/http/headers.ts).
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from '../sidecar/http/headers.ts'
import { createLogger } from '../sidecar/log.ts'
import { sample } from './fixtures/metrics.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'

const ROUTES = 'routes: [{ path: /hints, methods: [POST] }, { path: /ok, methods: [POST] }]'

async function upstream (t: Test): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(req.url as string)
    if (req.url === '/hints') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' })
      req.resume()
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hinted":true}'))
      return
    }
    req.resume()
    req.on('end', () => res.end('{}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

async function sidecar (t: Test, yaml: string, up: string, wrapUpstream?: (pool: Dispatcher) => Dispatcher) {
  const store = new ConfigStore(snapshot(yaml, up))
  const metrics = testMetrics(store)
  const app = await buildPublicApp({ store, metrics, logger: createLogger('silent', new Writable({ write (_c, _e, cb) { cb() } })), wrapUpstream })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { url, metrics }
}

t.test('an informational answer (103 Early Hints) is not relayed; the final answer is', async (t) => {
  const up = await upstream(t)
  const sc = await sidecar(t, ROUTES, up.url)
  const res = await fetch(`${sc.url}/hints`, { method: 'POST', body: '{}' })
  t.equal(res.status, 200)
  t.same(await res.json(), { hinted: true })
})

t.test('a client that leaves before its request reached an upstream connection: never sent', async (t) => {
  const up = await upstream(t)
  let forward: (() => void) | undefined
  // Hold each dispatch until the test lets it go, as a slow connect to the upstream would.
  const sc = await sidecar(t, ROUTES, up.url, (pool) => ({
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => { forward = () => { pool.dispatch(opts, handler) }; return true }
  }) as unknown as Dispatcher)
  const u = new URL(sc.url)
  const client = await new Promise<Socket>((resolve) => {
    const s = connect(Number(u.port), u.hostname, () => resolve(s))
  })
  client.on('error', () => undefined)
  client.write('POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')
  for (let i = 0; i < 200 && forward === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.ok(forward !== undefined, 'the request was admitted and dispatched')
  client.destroy()
  await new Promise((resolve) => setTimeout(resolve, 50))
  ;(forward as () => void)()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(up.seen, [], 'the upstream never saw it')
  t.equal(await sample(sc.metrics.upstreamInFlight), 0, 'its slot is free')
  t.equal((await sc.metrics.upstreamErrors.get()).values.reduce((n, v) => n + v.value, 0), 0, 'not the upstream\'s failure')
})

t.test('headers to the upstream: the client\'s lines as received, less hop-by-hop ones and what the proxy sets', async (t) => {
  const req = {
    rawHeaders: ['Host', 'api.example.com', 'Cookie', 'a=1', 'cookie', 'b=2', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'TE', 'trailers',
      'X-Forwarded-For', '6.6.6.6', 'X-Request-Id', 'theirs', 'Content-Type', 'application/json'],
    headers: { host: 'api.example.com', connection: 'keep-alive, X-Hop', 'x-forwarded-for': '6.6.6.6' },
    socket: { remoteAddress: '127.0.0.1' }
  } as unknown as IncomingMessage
  t.same(upstreamRequestHeaders(req, false, '127.0.0.1:8080', 'ours'), [
    'Cookie', 'a=1', 'cookie', 'b=2', 'Content-Type', 'application/json',
    'host', '127.0.0.1:8080', 'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'api.example.com', 'x-request-id', 'ours'
  ])
})

t.test('headers to the client: ours, then the upstream\'s less hop-by-hop and Access-Control-*, Vary merged', async (t) => {
  const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p))
  const up = raw('Content-Type', 'application/json', 'Access-Control-Allow-Origin', '*', 'Connection', 'x-secret', 'X-Secret', 's',
    'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Request-Id', 'upstream', 'Vary', 'Accept-Encoding')
  t.same(clientResponseHeaders({ 'x-request-id': 'r1', 'access-control-allow-origin': 'https://app.example.com', vary: 'Origin' }, up), [
    'x-request-id', 'r1', 'access-control-allow-origin', 'https://app.example.com',
    'Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'vary', 'Accept-Encoding, Origin'
  ])
  t.same(clientResponseHeaders({ 'x-request-id': 'r2' }, raw('Vary', 'Accept-Encoding', 'vary', 'Cookie')), ['x-request-id', 'r2', 'vary', 'Accept-Encoding, Cookie'], 'no Vary of ours: the upstream\'s, as one')
  t.same(clientResponseHeaders({ 'x-request-id': 'r3', vary: 'Origin' }, raw('Vary', '*')), ['x-request-id', 'r3', 'vary', '*'], '"*" stays')
  t.same(clientResponseHeaders({ 'x-request-id': 'r4', vary: 'Origin' }, []), ['x-request-id', 'r4', 'vary', 'Origin'])
  t.same(clientResponseHeaders({ 'x-request-id': 'r5' }, []), ['x-request-id', 'r5'], 'no Vary at all')
})
