// The one retry (sidecar/upstream-pool.ts), against a real upstream on loopback that makes the
// keep-alive race certain: after answering /condemn on a kept-alive connection, it resets the next
// request that arrives on that same connection before answering it.
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Readable } from 'node:stream'
import { createUpstreamPool, REPLAYABLE_BODY_BYTES } from '../sidecar/http/upstream-pool.ts'
import { startSidecar } from './fixtures/sidecar.ts'

interface Racy { url: string; seen: string[]; sockets: Set<Socket>; mode: { resetAll: boolean; cutAnswers: boolean } }

async function racyUpstream (t: Test): Promise<Racy> {
  const condemned = new WeakSet<Socket>()
  const seen: string[] = []
  const sockets = new Set<Socket>()
  const mode = { resetAll: false, cutAnswers: false }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(req.url as string)
    if (condemned.has(req.socket) || (mode.resetAll && req.url !== '/condemn')) { req.socket.resetAndDestroy(); return }
    req.resume()
    req.on('end', () => {
      if (req.url === '/condemn') condemned.add(req.socket)
      if (mode.cutAnswers && req.url !== '/condemn') {
        // The answer begins, then the connection dies: too late to send the request again.
        res.writeHead(200, { 'content-length': '100' })
        res.write('partial', () => req.socket.resetAndDestroy())
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url }))
    })
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, sockets, mode }
}

function pool (t: Test, url: string, retried: Array<string | undefined>) {
  const p = createUpstreamPool(url, { connections: 1, pipelining: 1, onRetry: (id) => { retried.push(id) } })
  t.teardown(() => p.destroy())
  return p
}

const post = (body: unknown, id = 'r1') => ({ path: '/ok', method: 'POST' as const, headers: { 'x-request-id': id }, body: body as string })

t.test('a held body met by the close of its reused connection is sent again on a fresh one', async (t) => {
  const up = await racyUpstream(t)
  const retried: Array<string | undefined> = []
  const p = pool(t, up.url, retried)
  for (const [what, body] of [['a Buffer', Buffer.from('{"text":["x"]}')], ['no body', undefined], ['64 KiB exactly', Buffer.alloc(REPLAYABLE_BODY_BYTES, 0x61)], ['a string', 'abc']] as const) {
    await (await p.request({ path: '/condemn', method: 'GET' })).body.text()
    const res = await p.request(post(body, what))
    t.equal(res.statusCode, 200, `${what}: answered`)
    t.same(await res.body.json(), { url: '/ok' })
    t.equal(retried.at(-1), what, `${what}: one retry, told with its request id`)
  }
  t.equal(retried.length, 4)
})

t.test('never sent again: a streamed body, a body over 64 KiB, an answer that had begun, a second failure', async (t) => {
  const up = await racyUpstream(t)
  const retried: Array<string | undefined> = []
  const p = pool(t, up.url, retried)
  const failsWith = async (what: string, req: Parameters<typeof p.request>[0]): Promise<void> => {
    await (await p.request({ path: '/condemn', method: 'GET' })).body.text()
    const err = await p.request(req).then(async (res) => { await res.body.text(); return undefined }, (e: NodeJS.ErrnoException) => e)
    t.match(err?.code, /^(UND_ERR_SOCKET|ECONNRESET|EPIPE)$/, `${what}: the connection's failure is reported`)
  }
  await failsWith('a streamed body', post(Readable.from([Buffer.from('{"text":["x"]}')])))
  await failsWith('a body over 64 KiB', post(Buffer.alloc(REPLAYABLE_BODY_BYTES + 1, 0x61)))
  t.equal(retried.length, 0, 'no retry for a body that cannot be sent again')
  up.mode.cutAnswers = true
  await (await p.request({ path: '/condemn', method: 'GET' })).body.text()
  // The condemned connection resets this one first: it is retried, and the retry's answer is cut.
  const cut = await p.request(post(Buffer.from('x'), 'cut'))
  const read = await cut.body.text().then(() => undefined, (e: Error) => e)
  t.ok(read instanceof Error, 'an answer cut after it began fails the body, as it happened')
  t.same(retried, ['cut'], 'sent again once, then never again once the answer had begun')
  up.mode.cutAnswers = false
  up.mode.resetAll = true
  await failsWith('a retry that fails too', post(Buffer.from('x'), 'twice'))
  t.same(retried, ['cut', 'twice'], 'one retry, not two')
})

t.test('a request on a fresh connection is never sent again', async (t) => {
  const up = await racyUpstream(t)
  up.mode.resetAll = true
  const retried: Array<string | undefined> = []
  const p = pool(t, up.url, retried)
  const err = await p.request(post(Buffer.from('x'))).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  t.match(err?.code, /^(UND_ERR_SOCKET|ECONNRESET)$/)
  t.same(retried, [], 'the upstream may have read it: a crash, not the keep-alive race')
  t.same(up.seen, ['/ok'], 'it was sent once')
})

t.test('through the sidecar: a held body is answered 200 after one retry, counted and logged', async (t) => {
  const up = await racyUpstream(t)
  const sc = await startSidecar(`
upstream: { maxConcurrent: 1 }
routes: [{ path: /condemn, methods: [POST] }, { path: /ok, methods: [POST] }]
`, up.url)
  t.teardown(sc.close)
  t.equal((await fetch(`${sc.url}/condemn`, { method: 'POST', body: '{}' })).status, 200)
  const res = await fetch(`${sc.url}/ok`, { method: 'POST', body: '{"text":["x"]}', headers: { 'x-request-id': 'raced-1', 'content-type': 'application/json; charset=utf-8' } })
  t.equal(res.status, 200)
  t.same(await res.json(), { url: '/ok' })
  t.equal((await sc.metrics.upstreamRetries.get()).values.find((v) => v.labels.reason === 'reused_connection_closed')?.value, 1)
  t.match(sc.logs.find((l) => l.requestId === 'raced-1' && l.reason === 'reused_connection_closed'), { msg: /sent again on a fresh connection/ })
  t.match(sc.logs.find((l) => l.requestId === 'raced-1' && l.msg === 'request'), { status: 200, upstreamStatus: 200, bytesIn: 14 })
})
