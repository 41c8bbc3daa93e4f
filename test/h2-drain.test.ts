// Shutdown over TLS (docs/ARCHITECTURE.md, "Shutdown"): an HTTP/2 connection's `Connection: close`
// is a graceful GOAWAY, its open streams finish; one accepted while draining serves its first
// stream and then ends; shutdown.timeout cuts what is left. HTTP/1.1 connections on TLS drain as
// plain ones do, and WebSocket upgrades over HTTP/1.1 on TLS keep working.
import t from 'tap'
import { once } from 'node:events'
import { connect, constants, type ClientHttp2Session } from 'node:http2'
import { Agent, request as httpsRequest } from 'node:https'
import { Writable } from 'node:stream'
import WebSocket from 'ws'
import { createSecureServer } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { ConnectionDrain } from '../sidecar/drain.ts'
import { serve } from '../sidecar/server.ts'
import { readPair } from '../sidecar/tls.ts'
import { makeCa } from './fixtures/certs.ts'
import { h2connect, h2request } from './fixtures/h2.ts'
import { snapshot } from './fixtures/sidecar.ts'
import { startUpstream } from './fixtures/upstream.ts'
import { nextMessage, startWsUpstream } from './fixtures/ws.ts'

const ca = await makeCa()
t.teardown(ca.remove)
const leaf = await ca.leaf('drain')
const read = await readPair({ certFile: leaf.certFile, keyFile: leaf.keyFile, minVersion: 'TLSv1.2' })
if (!read.ok) throw new Error(read.errors.join('\n'))
const quiet = (): Writable => new Writable({ write (_c, _e, cb) { cb() } })

const config = (upstream: string, shutdown: string, extra = ''): ReturnType<typeof snapshot> => snapshot(`server: { host: 127.0.0.1, port: 0, tls: { certFile: ${leaf.certFile}, keyFile: ${leaf.keyFile} } }
admin: { host: 127.0.0.1, port: 0 }
routes: [{ path: /slow, methods: [POST] }, { path: /hang, methods: [POST] }, { path: /process/text, methods: [POST] }]
shutdown: ${shutdown}
${extra}`, upstream)

const goaway = (s: ClientHttp2Session): Promise<unknown[]> => once(s, 'goaway')

t.test('draining: open HTTP/2 connections get GOAWAY and finish their streams; one accepted meanwhile serves a stream and ends; the timeout cuts the rest', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const r = await serve(config(up.url, '{ delay: 500ms, timeout: 400ms }'), { version: '1.0.0', destination: quiet(), tls: read.pair })
  const before = await h2connect(r.publicUrl, ca.ca)
  const slow = h2request(before, { ':method': 'POST', ':path': '/slow' }, '{}')
  const hanging = await h2connect(r.publicUrl, ca.ca)
  const hang = hanging.request({ ':method': 'POST', ':path': '/hang' })
  hang.on('error', () => undefined)
  hang.end('{}')
  while (!up.received.some((x) => x.url === '/hang')) await new Promise((resolve) => setTimeout(resolve, 10))
  const gone = goaway(before)
  r.shutdown('test')
  const [code] = await gone as [number]
  t.equal(code, constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY at once')
  t.equal((await slow).status, 200, 'the stream in flight finishes')
  // Accepted during shutdown.delay: served, and then told to go.
  const during = await h2connect(r.publicUrl, ca.ca)
  const ends = goaway(during)
  t.equal((await h2request(during, { ':method': 'POST', ':path': '/process/text' }, '{}')).status, 200)
  await ends
  // The hanging stream is cut by shutdown.timeout, and the process ends.
  await once(hang, 'close')
  t.equal(await r.done, 0)
  for (const s of [before, hanging, during]) s.destroy()
})

t.test('HTTP/1.1 on TLS: an idle kept-alive connection is closed once the listener closes', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const r = await serve(config(up.url, '{ delay: 0s, timeout: 2s }'), { version: '1.0.0', destination: quiet(), tls: read.pair })
  const agent = new Agent({ keepAlive: true, ca: ca.ca, servername: 'localhost' })
  t.teardown(() => { agent.destroy() })
  const u = new URL(r.publicUrl)
  const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: u.port, path: '/process/text', method: 'POST', agent }, (res) => {
      res.resume()
      res.on('end', () => { resolve(req.socket as import('node:net').Socket) })
    })
    req.on('error', reject)
    req.end('{}')
  })
  const closed = once(socket, 'close')
  r.shutdown('test')
  await closed
  t.pass('the idle connection was closed')
  t.equal(await r.done, 0)
})

t.test('a second signal closes every TLS connection at once, HTTP/2 sessions included', async (t) => {
  const up = await startUpstream()
  t.teardown(up.close)
  const r = await serve(config(up.url, '{ delay: 10s, timeout: 10s }'), { version: '1.0.0', destination: quiet(), tls: read.pair })
  const session = await h2connect(r.publicUrl, ca.ca)
  // A request answered: the server has the session.
  t.equal((await h2request(session, { ':method': 'POST', ':path': '/process/text' }, '{}')).status, 200)
  const closed = once(session, 'close')
  r.shutdown('first')
  r.shutdown('second')
  await closed
  t.equal(await r.done, 1)
})

t.test('WebSocket upgrades keep working over HTTP/1.1 on TLS (wss://)', async (t) => {
  const wsUp = await startWsUpstream()
  t.teardown(wsUp.close)
  const r = await serve(config(wsUp.url, '{ delay: 0s, timeout: 2s }', 'cors: { allowedOrigins: [https://app.example.com] }\nwebsocket: { enabled: true }\n'), { version: '1.0.0', destination: quiet(), tls: read.pair })
  t.teardown(async () => { r.shutdown('test'); await r.done })
  const ws = new WebSocket(`${r.publicUrl.replace(/^https/, 'wss')}/ws`, { ca: ca.ca, headers: { origin: 'https://app.example.com' } })
  await once(ws, 'open')
  const echoed = nextMessage(ws)
  ws.send('hello')
  t.equal((await echoed).data.toString(), 'hello')
  ws.close()
  await once(ws, 'close')
})

t.test('ConnectionDrain on TLS: once the listener is closing, a new HTTP/2 connection is told to go at once; after closeAll(), it is not served at all', async (t) => {
  const server = createSecureServer({ ...read.pair.options, allowHTTP1: true }, (_req, res) => { res.end('ok') })
  const drain = new ConnectionDrain(server as unknown as import('node:http').Server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  // What server.close() calls first: from now on the listener counts as closed.
  const closeIdle = (server as unknown as { closeIdleConnections: () => void }).closeIdleConnections
  closeIdle()
  const late = await h2connect(url, ca.ca)
  const [code] = await once(late, 'goaway') as [number]
  t.equal(code, constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY before any stream')
  late.destroy()
  drain.closeAll()
  const refused = connect(url, { ca: ca.ca })
  refused.on('error', () => undefined)
  await once(refused, 'close')
  t.notOk(refused.connecting, 'the connection was cut')
})
