// Draining, request by request: from SIGTERM on, every answer ends its connection (Connection:
// close) so the client opens the next one elsewhere; once the listener closes, a request on a
// connection that is still open is served all the same, an idle kept-alive connection is closed,
// and a connection accepted but still silent gets a grace before it counts as idle (drain.ts).
import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { serve, type Running } from '../sidecar/server.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'
import { startUpstream, type Upstream } from './fixtures/upstream.ts'

const APP = 'https://app.example.com'
const quiet = (): Writable => new Writable({ write (_c, _e, cb) { cb() } })

t.test('while draining, answers are served as usual and carry Connection: close', async (t) => {
  let draining = false
  const store = new ConfigStore(snapshot(`cors: { allowedOrigins: [${APP}] }`))
  const app = await buildPublicApp({ store, metrics: testMetrics(store), draining: () => draining, logger: createLogger('silent', quiet()) })
  t.teardown(() => app.close())
  const before = await app.inject({ url: '/nowhere' })
  t.equal(before.statusCode, 404)
  t.not(before.headers.connection, 'close', 'not before SIGTERM')
  draining = true
  const res = await app.inject({ url: '/nowhere', headers: { origin: APP } })
  t.equal(res.statusCode, 404, 'the usual answer, not a 503')
  t.equal(res.headers.connection, 'close')
  t.equal(res.headers['access-control-allow-origin'], APP)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/process/text', headers: { origin: APP, 'access-control-request-method': 'POST' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers.connection, 'close', 'preflights too')
})

/** A raw client connection that records what it receives and how it ends. */
class Conn {
  readonly socket: Socket
  received = ''
  error: Error | undefined
  readonly closed: Promise<void>
  constructor (url: string) {
    const { hostname, port } = new URL(url)
    this.socket = connect(Number(port), hostname)
    this.socket.on('data', (c: Buffer) => { this.received += c.toString() })
    this.socket.on('error', (err) => { this.error = err })
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()))
  }

  opened (): Promise<void> { return new Promise((resolve) => this.socket.once('connect', () => resolve())) }
  send (path: string, body = '{"text":["x"]}'): void {
    this.socket.write(`POST ${path} HTTP/1.1\r\nHost: sidecar.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  }

  async answers (n: number): Promise<void> {
    for (let i = 0; i < 500 && (this.received.match(/HTTP\/1\.1 /g) ?? []).length < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function listenerClosed (url: string): Promise<void> {
  const { hostname, port } = new URL(url)
  for (let i = 0; i < 500; i++) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(Number(port), hostname)
      s.once('connect', () => { s.destroy(); resolve(false) })
      s.once('error', () => resolve(true))
    })
    if (refused) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the listener did not close')
}

async function start (t: Test, up: Upstream, shutdown: string): Promise<Running> {
  const r = await serve(snapshot(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
routes: [{ path: /process/text, methods: [POST] }, { path: /slow, methods: [POST] }]
shutdown: ${shutdown}
`, up.url), { version: 't', destination: quiet() })
  t.teardown(() => { r.shutdown('teardown'); r.shutdown('teardown') })
  return r
}

t.test('once the listener closes: requests on open connections are served, idle ones are closed', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const r = await start(t, up, '{ delay: 300ms, timeout: 10s }')
  // Kept alive from before SIGTERM, then idle through the whole delay: closed when the listener closes.
  const idle = new Conn(r.publicUrl)
  await idle.opened()
  idle.send('/process/text')
  await idle.answers(1)
  t.notMatch(idle.received, /connection: close/i, 'kept alive before SIGTERM')
  // In flight when the listener closes: its answer comes, with Connection: close.
  const busy = new Conn(r.publicUrl)
  await busy.opened()
  r.shutdown('SIGTERM')
  // Accepted during the delay, silent until after the listener closed: still served.
  const late = new Conn(r.publicUrl)
  await late.opened()
  await new Promise((resolve) => setTimeout(resolve, 200))
  busy.send('/slow')
  await listenerClosed(r.publicUrl)
  await idle.closed
  t.equal(idle.error, undefined, 'the idle connection was closed (no reset)')
  late.send('/process/text')
  await Promise.all([busy.closed, late.closed])
  for (const [name, c] of [['in flight', busy], ['silent until after the close', late]] as const) {
    t.match(c.received, /^HTTP\/1\.1 200 /, `${name}: served 200`)
    t.match(c.received, /\r\nconnection: close\r\n/i, `${name}: with Connection: close`)
    t.equal(c.error, undefined, `${name}: no reset`)
  }
  t.equal(await r.done, 0, 'exit 0')
})

t.test('a connection accepted and silent is closed after its grace, and the drain still ends', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const r = await start(t, up, '{ delay: 300ms, timeout: 30s }')
  r.shutdown('SIGTERM')
  const silent = new Conn(r.publicUrl)
  await silent.opened()
  await listenerClosed(r.publicUrl)
  const started = performance.now()
  await silent.closed
  const ms = performance.now() - started
  t.ok(ms >= 4000 && ms < 20_000, `closed after its grace of 5 s (${Math.round(ms)} ms), not at shutdown.timeout`)
  t.equal(silent.received, '', 'nothing was answered: it never asked')
  t.equal(await r.done, 0)
})
