// Everything the sidecar does, per HTTP/2 stream (docs/ARCHITECTURE.md, "HTTP/2"): the early
// preflight, the gate's refusals, bodies held and streamed, 413 and 408 ending the stream and not
// the connection, deadlines, admission, the relay, the log line and the metrics; never an HTTP/1-only
// header; and the bounds against abuse (concurrent streams, header list size, rapid reset).
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect, constants, createSecureServer, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { CONNECTION_SPECIFIC, H2Response, MAX_EARLY_RESETS, withoutConnectionHeaders } from '../sidecar/http/h2.ts'
import { listenPublic, MAX_CONCURRENT_STREAMS } from '../sidecar/http/listener.ts'
import { createLogger } from '../sidecar/log.ts'
import { readPair, type TlsPair } from '../sidecar/tls.ts'
import { makeCa } from './fixtures/certs.ts'
import { h2connect, h2request, type H2Answer } from './fixtures/h2.ts'
import { snapshot, startSidecar, testMetrics, type TestSidecar } from './fixtures/sidecar.ts'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'

const APP = 'https://app.example.com'
const ca = await makeCa()
t.teardown(ca.remove)
const leaf = await ca.leaf('h2')
const read = await readPair({ certFile: leaf.certFile, keyFile: leaf.keyFile, minVersion: 'TLSv1.2' })
if (!read.ok) throw new Error(read.errors.join('\n'))
const pair: TlsPair = read.pair

const ROUTES = 'routes: [{ path: /echo, methods: [POST] }, { path: /hang, methods: [POST] }, { path: /leaky, methods: [GET] }, { path: /reset, methods: [POST] }, { path: /process/text, methods: [POST] }]\n'

async function setup (t: Test, yaml = ''): Promise<{ up: Upstream, s: TestSidecar, session: ClientHttp2Session }> {
  const up = await startUpstream()
  t.teardown(up.close)
  const s = await startSidecar(`cors: { allowedOrigins: [${APP}] }\n${ROUTES}${yaml}`, up.url, 'info', { tls: pair })
  t.teardown(s.close)
  const session = await h2connect(s.url, ca.ca)
  t.teardown(() => { session.destroy() })
  return { up, s, session }
}

function noConnectionHeaders (t: Test, a: H2Answer): void {
  t.same(Object.keys(a.headers).filter((h) => CONNECTION_SPECIFIC.has(h)), [], 'no connection-specific header')
}

/** A request whose body is written but never ended: the stream, and how it ended. */
function openBody (session: ClientHttp2Session, headers: Record<string, string>, first: Buffer): { stream: ClientHttp2Stream, answer: Promise<H2Answer & { rstCode: number | undefined }> } {
  const stream = session.request({ ':method': 'POST', ...headers }, { endStream: false })
  stream.write(first)
  const answer = (async () => {
    const closed = new Promise((resolve) => stream.once('close', resolve))
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    const [head] = await once(stream, 'response') as [Record<string, string | number>]
    await closed
    const text = Buffer.concat(chunks).toString()
    return { status: head[':status'] as number, headers: head as H2Answer['headers'], body: Buffer.concat(chunks), text, json: () => JSON.parse(text), rstCode: stream.rstCode }
  })()
  return { stream, answer }
}

t.test('H2Response drops connection-specific headers however they are set (RFC 9113 §8.2.2)', async (t) => {
  t.equal(withoutConnectionHeaders(undefined), undefined)
  t.same(withoutConnectionHeaders(['Connection', 'close', 'x-a', '1', 'Transfer-Encoding', 'chunked']), ['x-a', '1'])
  t.same(withoutConnectionHeaders({ 'keep-alive': 'timeout=5', upgrade: 'h2c', 'x-b': '2' }), { 'x-b': '2' })
  const server = createSecureServer({ ...pair.options, Http2ServerResponse: H2Response }, (req, res) => {
    res.setHeader('keep-alive', 'timeout=5')
    res.setHeader('x-set', '1')
    res.appendHeader('upgrade', 'h2c')
    res.appendHeader('x-appended', '2')
    if (req.url === '/message') res.writeHead(200, 'OK', { connection: 'close', 'x-head': '3' })
    else if (req.url === '/bare') res.writeHead(204)
    else res.writeHead(200, ['proxy-connection', 'keep-alive', 'x-head', '4'])
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const session = await h2connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca.ca)
  t.teardown(() => { session.destroy() })
  const message = await h2request(session, { ':path': '/message' })
  t.equal(message.headers['x-head'], '3')
  const flat = await h2request(session, { ':path': '/flat' })
  t.equal(flat.headers['x-head'], '4')
  const bare = await h2request(session, { ':path': '/bare' })
  t.equal(bare.status, 204)
  for (const a of [message, flat, bare]) {
    noConnectionHeaders(t, a)
    t.equal(a.headers['x-set'], '1')
    t.equal(a.headers['x-appended'], '2')
  }
})

t.test('the server advertises its bounds: concurrent streams, and the header list size of server.maxHeaderBytes', async (t) => {
  const { session } = await setup(t, 'server: { maxHeaderBytes: 8192 }\n')
  if (session.remoteSettings.maxConcurrentStreams !== MAX_CONCURRENT_STREAMS) await once(session, 'remoteSettings')
  t.equal(session.remoteSettings.maxConcurrentStreams, MAX_CONCURRENT_STREAMS)
  const fits = await h2request(session, { ':method': 'POST', ':path': '/process/text', 'x-big': 'x'.repeat(4000) }, '{}')
  t.equal(fits.status, 200)
  // Past the bound, Node refuses the stream: a 431, or RST_STREAM(ENHANCE_YOUR_CALM) when the list
  // grows past it while still arriving. Either way no request exists, as with HTTP/1.1's parser.
  for (const size of [9000, 20000]) {
    const refused = await h2request(session, { ':method': 'POST', ':path': '/process/text', 'x-big': 'x'.repeat(size) }, '{}').then((a) => a.status, (err: NodeJS.ErrnoException) => err.message)
    t.match(refused, /^(431|Stream closed with error code NGHTTP2_ENHANCE_YOUR_CALM)$/, `a ${size}-byte header past server.maxHeaderBytes`)
  }
  const after = await h2request(session, { ':method': 'POST', ':path': '/process/text' }, '{}')
  t.equal(after.status, 200, 'only that stream was refused: the connection goes on')
})

t.test('a preflight and its request share one connection; refusals are our JSON with CORS headers, per stream', async (t) => {
  const { up, s, session } = await setup(t)
  const pre = await h2request(session, { ':method': 'OPTIONS', ':path': '/process/text', origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' })
  t.equal(pre.status, 204)
  t.equal(pre.headers['access-control-allow-origin'], APP)
  t.equal(pre.headers['access-control-allow-headers'], 'content-type, x-request-id')
  const post = await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: APP, 'content-type': 'application/json' }, '{"text":["x"]}')
  t.equal(post.status, 200)
  t.equal(post.headers['access-control-allow-origin'], APP)
  const cases: [Record<string, string>, number, string][] = [
    [{ ':method': 'OPTIONS', ':path': '/process/text', origin: APP, 'access-control-request-method': 'DELETE' }, 403, 'cors_preflight_denied'],
    [{ ':method': 'POST', ':path': '/process/text', origin: 'https://evil.example' }, 403, 'cors_origin_denied'],
    [{ ':method': 'POST', ':path': '/nowhere', origin: APP }, 404, 'not_found'],
    [{ ':method': 'GET', ':path': '/process/text', origin: APP }, 405, 'method_not_allowed'],
    [{ ':method': 'POST', ':path': '/a/../process/text', origin: APP }, 400, 'bad_path'],
    [{ ':method': 'POST', ':path': '/%zz', origin: APP }, 400, 'bad_request'],
    [{ ':method': 'POST', ':path': '/reset', origin: APP }, 502, 'upstream_error'],
    [{ ':method': 'POST', ':path': '/process/text', origin: APP, expect: 'something' }, 417, 'expectation_failed']
  ]
  for (const [headers, status, code] of cases) {
    const a = await h2request(session, headers, headers[':method'] === 'POST' ? '{}' : undefined)
    t.equal(a.status, status, `${headers[':method']} ${headers[':path']}`)
    t.equal((a.json() as { error: { code: string } }).error.code, code)
    noConnectionHeaders(t, a)
    // A denied origin or preflight gets no Access-Control-* (Fetch); Node-level refusals come before the gate.
    const withCors = !['cors_origin_denied', 'cors_preflight_denied', 'expectation_failed', 'bad_request'].includes(code)
    t.equal(a.headers['access-control-allow-origin'], withCors ? APP : undefined, `${code}: CORS headers`)
  }
  const leaky = await h2request(session, { ':method': 'GET', ':path': '/leaky', origin: APP })
  t.equal(leaky.status, 200)
  noConnectionHeaders(t, leaky)
  t.equal(leaky.headers['x-hop'], undefined, 'a header the upstream named in Connection is dropped too')
  t.equal(leaky.headers['access-control-allow-origin'], APP, 'ours, not the upstream\'s')
  // The log line and the metrics of an HTTP/2 request: the matched route, the method, the status.
  const line = s.logs.find((l) => l.requestId === post.headers['x-request-id'])
  t.match(line, { method: 'POST', route: '/process/text', status: 200, cors: 'allowed' })
  t.match(await s.metrics.registry.getSingleMetricAsString('pai_sidecar_requests_total'), /route="\/process\/text",method="POST",status_class="2xx"/)
  t.equal(up.received.filter((r) => r.url === '/nowhere').length, 0)
})

t.test('CONNECT over HTTP/2 gets 405 in our JSON', async (t) => {
  const { session } = await setup(t)
  const a = await h2request(session, { ':method': 'CONNECT', ':authority': 'elsewhere.example:443' })
  t.equal(a.status, 405)
  t.equal((a.json() as { error: { code: string } }).error.code, 'method_not_allowed')
  noConnectionHeaders(t, a)
})

t.test('413 (declared and streamed) and 408 end their stream with RST_STREAM(NO_ERROR), and the connection goes on (RFC 9113 §8.1)', async (t) => {
  const { session } = await setup(t, 'limits: { maxBodyBytes: 100000, bodyIdleTimeout: 300ms }\n')
  const declared = openBody(session, { ':path': '/echo', origin: APP, 'content-length': '50000000' }, Buffer.alloc(16384))
  const a = await declared.answer
  t.equal(a.status, 413)
  t.equal((a.json() as { error: { code: string } }).error.code, 'payload_too_large')
  t.equal(a.headers['access-control-allow-origin'], APP)
  t.equal(a.rstCode, constants.NGHTTP2_NO_ERROR, 'the stream is ended without error')
  noConnectionHeaders(t, a)

  // (/process/text reads the whole body before it answers, as the container does.)
  const streamed = openBody(session, { ':path': '/process/text', origin: APP }, Buffer.alloc(60000))
  streamed.stream.write(Buffer.alloc(60000))
  const b = await streamed.answer
  t.equal(b.status, 413, 'a streamed body past limits.maxBodyBytes')
  t.equal(b.rstCode, constants.NGHTTP2_NO_ERROR)
  noConnectionHeaders(t, b)

  const idle = openBody(session, { ':path': '/process/text', origin: APP, 'content-length': '100' }, Buffer.from('{"text":'))
  const c = await idle.answer
  t.equal(c.status, 408, 'a held body that stopped arriving')
  t.equal((c.json() as { error: { code: string } }).error.code, 'request_timeout')
  t.equal(c.rstCode, constants.NGHTTP2_NO_ERROR)
  noConnectionHeaders(t, c)

  t.notOk(session.closed || session.destroyed, 'the connection is still open')
  // A body with neither Content-Length nor Content-Type is a body all the same (it ends with the stream).
  const bare = await h2request(session, { ':method': 'POST', ':path': '/echo', origin: APP }, 'hello')
  t.equal(bare.text, 'hello')
  const after = await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: APP }, '{}')
  t.equal(after.status, 200, 'and serves the next request')
})

t.test('upstream.requestTimeout and admission answer per stream', async (t) => {
  const { session } = await setup(t, 'upstream: { requestTimeout: 300ms, maxConcurrent: 1, queue: { size: 0 } }\n')
  const hanging = h2request(session, { ':method': 'POST', ':path': '/hang', origin: APP }, '{}')
  // The slot is taken once the upstream has the request; the next one on the same connection is refused.
  let full: H2Answer | undefined
  for (let i = 0; i < 50 && full?.status !== 503; i++) full = await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: APP }, '{}')
  t.equal(full?.status, 503)
  t.equal((full?.json() as { error: { code: string } }).error.code, 'queue_full')
  t.equal(full?.headers['retry-after'], '1')
  const timedOut = await hanging
  t.equal(timedOut.status, 504)
  t.equal((timedOut.json() as { error: { code: string } }).error.code, 'upstream_timeout')
  t.equal(timedOut.headers['access-control-allow-origin'], APP)
})

t.test('a 50 MB body streams up and back over one HTTP/2 stream', async (t) => {
  const { up, session } = await setup(t, 'limits: { maxBodyBytes: 60000000 }\n')
  const size = 50 * 1024 * 1024
  const chunk = Buffer.alloc(1024 * 1024, 7)
  let sent = 0
  const sentHash = createHash('sha256')
  const body = new Readable({
    read () {
      if (sent >= size) { this.push(null); return }
      const c = Buffer.from(chunk.map((b, i) => (b + i + sent) & 0xff))
      sent += c.length
      sentHash.update(c)
      this.push(c)
    }
  })
  const a = await h2request(session, { ':method': 'POST', ':path': '/echo', origin: APP, 'content-type': 'application/octet-stream' }, body)
  t.equal(a.status, 200)
  t.equal(a.body.length, size)
  t.equal(createHash('sha256').update(a.body).digest('hex'), sentHash.digest('hex'), 'the same bytes came back')
  t.equal(up.received.find((r) => r.headers['x-request-id'] === a.headers['x-request-id'])?.bytes, size)
})

t.test(`the rapid-reset pattern: more than ${MAX_EARLY_RESETS} streams cancelled before their answer close the connection (GOAWAY ENHANCE_YOUR_CALM)`, async (t) => {
  const { s } = await setup(t)
  const session = connect(s.url, { ca: ca.ca })
  session.on('error', () => undefined)
  await once(session, 'connect')
  const goaway = once(session, 'goaway')
  // In bounded batches under maxConcurrentStreams, each stream opened and cancelled at once.
  for (let sent = 0; sent <= MAX_EARLY_RESETS * 3 && !session.closed && !session.destroyed; sent += 20) {
    const streams: ClientHttp2Stream[] = []
    for (let i = 0; i < 20; i++) {
      const st = session.request({ ':method': 'POST', ':path': '/hang', origin: APP }, { endStream: false })
      st.on('error', () => undefined)
      st.close(constants.NGHTTP2_CANCEL)
      streams.push(st)
    }
    await Promise.all(streams.map(async (st) => { if (!st.closed) await once(st, 'close') }))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const [code] = await goaway as [number]
  t.equal(code, constants.NGHTTP2_ENHANCE_YOUR_CALM)
  // Nothing is left waiting on the upstream, and other clients are served.
  for (let i = 0; i < 100 && (await s.metrics.upstreamInFlight.get()).values[0]?.value !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await s.metrics.upstreamInFlight.get()).values[0]?.value, 0)
  const fresh = await h2connect(s.url, ca.ca)
  t.teardown(() => { fresh.destroy() })
  t.equal((await h2request(fresh, { ':method': 'POST', ':path': '/process/text', origin: APP }, '{}')).status, 200)
  session.destroy()
})

t.test('a browser that cancels a few streams keeps its connection', async (t) => {
  const { session } = await setup(t)
  for (let i = 0; i < 10; i++) {
    const st = session.request({ ':method': 'POST', ':path': '/hang', origin: APP }, { endStream: false })
    st.on('error', () => undefined)
    st.close(constants.NGHTTP2_CANCEL)
    await once(st, 'close')
  }
  t.equal((await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: APP }, '{}')).status, 200)
  t.notOk(session.closed)
})

t.test('while draining, HTTP/2 answers carry no Connection header; the early preflight neither', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const store = new ConfigStore(snapshot(`cors: { allowedOrigins: [${APP}] }\n${ROUTES}`, up.url))
  const app = await buildPublicApp({ store, metrics: testMetrics(store), tls: pair, draining: () => true, logger: createLogger('silent', new Writable({ write (_c, _e, cb) { cb() } })) })
  t.teardown(() => app.close())
  const url = await listenPublic(app, true, '127.0.0.1', 0)
  const session = await h2connect(url, ca.ca)
  t.teardown(() => { session.destroy() })
  const pre = await h2request(session, { ':method': 'OPTIONS', ':path': '/process/text', origin: APP, 'access-control-request-method': 'POST' })
  t.equal(pre.status, 204)
  noConnectionHeaders(t, pre)
  const post = await h2request(session, { ':method': 'POST', ':path': '/process/text', origin: APP }, '{}')
  t.equal(post.status, 200)
  noConnectionHeaders(t, post)
})
