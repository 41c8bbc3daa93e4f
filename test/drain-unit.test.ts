// sidecar/drain.ts on a bare node:http server, with a short grace: which connections the closing of
// the listener closes at once, which it leaves to be served, and which it closes after the grace.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { ConnectionDrain } from '../sidecar/drain.ts'

const GRACE_MS = 150
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function rig (t: Test) {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  const drain = new ConnectionDrain(server, GRACE_MS)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const open = async (): Promise<{ socket: Socket; data: () => string; closed: Promise<void> }> => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.on('data', (c: Buffer) => { data += c.toString() })
    socket.on('error', () => undefined)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // Until the server has accepted it.
    await sleep(20)
    return { socket, data: () => data, closed }
  }
  t.teardown(() => { server.closeAllConnections() })
  return { server, drain, open }
}

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'

t.test('idle kept-alive connections close with the listener; a request arriving on one is served', async (t) => {
  const { server, drain, open } = await rig(t)
  const idle = await open()
  const arriving = await open()
  for (const c of [idle, arriving]) c.socket.write(GET)
  await sleep(50)
  drain.start()
  // The next request on `arriving` has begun (half its head), not on `idle`.
  arriving.socket.write('GET / HTTP/1.1\r\n')
  await sleep(30)
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  await idle.closed
  t.match(idle.data(), /^HTTP\/1\.1 200 /, 'the idle one had its answer, then was closed')
  t.equal(arriving.socket.destroyed, false, 'the one whose request is arriving stays open')
  arriving.socket.write('Host: x\r\n\r\n')
  await sleep(50)
  t.equal((arriving.data().match(/HTTP\/1\.1 200 /g) ?? []).length, 2, 'and its request is served')
  arriving.socket.end()
  await closed
})

t.test('a connection accepted but silent gets the grace; one whose request began is served', async (t) => {
  const { server, drain, open } = await rig(t)
  // SIGTERM first: these connections are accepted during the delay.
  drain.start()
  const silent = await open()
  const begun = await open()
  begun.socket.write('GET / HTTP/1.1\r\n')
  const started = performance.now()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  await sleep(GRACE_MS / 3)
  t.equal(silent.socket.destroyed, false, 'not closed before its grace')
  await silent.closed
  t.ok(performance.now() - started >= GRACE_MS - 20, 'closed once the grace is over')
  t.equal(silent.data(), '', 'it never asked, nothing was answered')
  await sleep(GRACE_MS)
  t.equal(begun.socket.destroyed, false, 'the begun one outlives the grace')
  begun.socket.end('Host: x\r\n\r\n')
  await begun.closed
  t.match(begun.data(), /^HTTP\/1\.1 200 /, 'and is served')
  await closed
})

t.test('closed without a drain first (a second signal): whatever is idle at that moment is closed', async (t) => {
  const { server, open } = await rig(t)
  const silent = await open()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  await silent.closed
  t.equal(silent.data(), '')
  await closed
})
