// The peers of `npm run bench` (bench/peers.ts), run with tiny durations: each installed
// peer is started the way its users run it, checked for correct CORS answers, and loaded for one
// one-second round next to the other targets; the per-target table and its chart have a row and a
// bar for each. No figure is asserted: this machine is shared. CI installs haproxy and caddy
// (.ci/install-system-deps); without them a developer's run leaves them out.
// Split from bench-smoke.test.ts so that neither file comes near tap's per-file limit.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { Agent, createServer, request, type IncomingMessage } from 'node:http'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chart } from '../bench/chart.ts'
import { checkAnswers, runBench, startPrinting, startUpstream, stop, type Report, type TargetName } from '../bench/harness.ts'
import { defaultLoader } from '../bench/load.ts'
import { nginxBinary } from '../bench/nginx.ts'
import { availablePeers, BINARIES, caddyfile, haproxyConfig, parsePeers, PEERS, viteConfig } from '../bench/peers.ts'
import { formatPeers, peerRows, peersMarkdown, summarise, TARGET_LABELS } from '../bench/report.ts'

const nginx = nginxBinary()
const wrk = defaultLoader() === 'wrk'
const { peers, missing } = availablePeers(PEERS)
if ((missing.length > 0 || nginx === undefined || !wrk) && process.env.CI !== undefined) throw new Error('CI must install Debian\'s nginx, wrk, haproxy and caddy (see .ci/install-system-deps)')
// About 25 s alone.
t.setTimeout(120_000)

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pai-bench-peers-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('every installed peer is started, checked and loaded next to the other targets', { skip: nginx === undefined || !wrk ? 'nginx or wrk not installed' : false }, async (t) => {
  const lines: string[] = []
  const report = await runBench({
    seconds: 1,
    rounds: 1,
    warmup: 0,
    cases: ['small', 'preflight', 'stream'],
    connections: 4,
    delayMs: 0,
    streamBytes: 1024 * 1024 + 7,
    loader: 'wrk',
    nginx,
    peers,
    pin: true,
    log: (line) => lines.push(line)
  })
  const proxies: TargetName[] = ['sidecar', 'floor', 'nginx', ...peers]
  for (const target of ['direct', ...proxies] as TargetName[]) {
    const [s] = report.samples.small?.[target] ?? []
    t.ok((s?.rps as number) > 0 && (s?.p99 as number) > 0 && (s?.cpu10k as number) >= 0, `small ${target}`)
    t.ok((report.samples.stream?.[target]?.[0]?.ms as number) > 0, `stream ${target}`)
  }
  t.same(Object.keys(report.samples.preflight ?? {}).sort(), [...proxies].sort(), 'preflights go to the proxies only')
  t.same(Object.keys(report.idle.targets ?? {}).sort(), [...proxies].sort(), 'every proxy\'s idle RSS')
  t.equal(lines.length, 3 * proxies.length + 2, 'one progress line per measurement')

  const ahead = summarise(report).filter((r) => r.case.startsWith('7 '))
  t.same(ahead.map((r) => `${r.case} ${r.measure}`), ['7 vs Node.js peers (small) req/s', '7 vs Node.js peers (preflight) req/s', '7 vs Node.js peers (stream) time ms'])
  for (const r of ahead) t.match(r, { result: Number, resultText: /^\d+\.\d{3} × best Node\.js peer$/, pass: Boolean })
  const rows = peerRows(report)
  t.same(rows.map((r) => r.target), (Object.keys(TARGET_LABELS) as TargetName[]).filter((n) => n === 'direct' || proxies.includes(n)), 'one row per target, in the table\'s order')
  for (const r of rows.filter((r) => ['nginx', ...peers].includes(r.target))) t.match(r.label, / \(\d+\.\d+\.\d+( \/ \d+\.\d+\.\d+)*\)$/, `${r.target}: with its version`)
  t.equal(rows.find((r) => r.target === 'sidecar')?.label, 'this sidecar')
  for (const r of rows) t.equal(r.cells.length, 6, `${r.target}: small, preflight, stream time and RSS, CPU, idle; no AI-shaped columns`)
  t.match(rows.find((r) => r.target === 'nginx')?.cells[0], { ratio: 1, text: /^\d+ \(1\.00\)$/ })
  t.match(formatPeers(report, rows), /^target +small POST req\/s \(× nginx\) +preflight req\/s \(× nginx\) +stream ms \(× direct\) +stream peak RSS \+MB +CPU s \/ 10k small POSTs \(× nginx\) +idle RSS MB\n/)
  const svg = chart(report, rows)
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  // Small POSTs, preflights (proxies only) and CPU against nginx, the stream against direct.
  t.equal(svg.match(/<rect x=/g)?.length, 4 * proxies.length - 1, 'one bar per target and ratio, the reference left out')
})

t.test('the generated configurations are ones HAProxy and Caddy accept', async (t) => {
  const dir = tempDir(t)
  const upstream = 'http://127.0.0.1:9'
  t.test('haproxy', { skip: missing.includes('haproxy') ? 'haproxy not installed' : false }, async (t) => {
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(1, upstream))
    t.match(execFileSync(BINARIES.haproxy as string, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), /Configuration file is valid/)
  })
  t.test('caddy', { skip: missing.includes('caddy') ? 'caddy not installed' : false }, async (t) => {
    writeFileSync(join(dir, 'Caddyfile'), caddyfile(1, upstream))
    execFileSync(BINARIES.caddy as string, ['validate', '--adapter', 'caddyfile', '--config', join(dir, 'Caddyfile')], { stdio: 'ignore', env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } })
    t.pass('caddy validate accepted it')
  })
  const vite = viteConfig('/root', 5, upstream)
  t.match(vite, 'new RegExp("^https://[a-z0-9-]+(\\\\.[a-z0-9-]+)*\\\\.example\\\\.com$")')
  t.match(vite, '"/process": { target: "http://127.0.0.1:9", agent },')
  t.match(haproxyConfig(1, upstream), "acl cors_origin req.hdr(origin) -m reg '^(https://app\\.example\\.com|https://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.example\\.com|http://localhost(:[0-9]+)?|https://other\\.example\\.org)$'")
})

t.test('peers are chosen by name, and one whose binary is missing is left out', async (t) => {
  t.same(parsePeers('fastify,,caddy, vite'), { peers: ['fastify', 'caddy', 'vite'], unknown: [] })
  t.same(parsePeers('fastify,traefik'), { peers: ['fastify'], unknown: ['traefik'] })
  t.same(availablePeers(['fastify', 'haproxy', 'caddy', 'express'], { haproxy: '/nonexistent/haproxy', caddy: process.execPath }), { peers: ['fastify', 'caddy', 'express'], missing: ['haproxy'] })
})

/** A proxy that answers like a correct one, except for `fault`. */
async function faulty (t: Test, fault: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/echo') {
      let n = 0
      req.on('data', (c: Buffer) => { n += c.length })
      req.on('end', () => { res.writeHead(200).end(Buffer.alloc(fault === 'echo' ? 0 : n)) })
      return
    }
    req.resume()
    const origin = req.headers.origin as string
    const foreign = origin === 'https://evil.example.net'
    const h: Record<string, string> = {}
    if (!foreign || fault === 'foreign') h['access-control-allow-origin'] = origin
    if (req.method === 'OPTIONS') {
      if (fault !== 'methods') h['access-control-allow-methods'] = 'POST'
      h['access-control-allow-headers'] = fault === 'headers' ? 'x-request-id' : 'Content-Type, X-Request-Id'
      h['access-control-max-age'] = fault === 'max-age' ? '5' : '600'
      res.writeHead(fault === 'status' ? 403 : 204, h).end()
      return
    }
    if (fault !== 'expose') h['access-control-expose-headers'] = 'x-request-id'
    res.writeHead(200, h).end(fault === 'body' ? '{}' : '{"processed_text":[]}')
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('a proxy that answers wrongly is refused before it is measured, with what was wrong', async (t) => {
  await checkAnswers('fine', await faulty(t, 'none'))
  const cases: [string, RegExp][] = [
    ['status', /preflight from https:\/\/app\.example\.com answered 403$/],
    ['methods', /preflight from https:\/\/app\.example\.com: Access-Control-Allow-Methods null$/],
    ['headers', /: Access-Control-Allow-Headers x-request-id$/],
    ['max-age', /: Access-Control-Max-Age 5$/],
    ['body', /POST from https:\/\/app\.example\.com answered 200, not the upstream's answer$/],
    ['expose', /POST from https:\/\/app\.example\.com: Access-Control-Expose-Headers null$/],
    ['echo', /answers wrongly, so it is not measured: http:\/\/127\.0\.0\.1:\d+\/echo sent back 0 of 1000 bytes$/],
    ['foreign', /OPTIONS from https:\/\/evil\.example\.net: Access-Control-Allow-Origin https:\/\/evil\.example\.net$/]
  ]
  for (const [fault, message] of cases) {
    await t.rejects(checkAnswers('broken', await faulty(t, fault)), { message }, fault)
  }
  await t.rejects(checkAnswers('broken', await faulty(t, 'status')), { message: /^broken \(http:\/\/127\.0\.0\.1:\d+\) answers wrongly, so it is not measured: / })
  // Listening, never answering.
  const deaf = createServer(() => {}).listen(0, '127.0.0.1')
  await once(deaf, 'listening')
  t.teardown(() => { deaf.closeAllConnections(); deaf.close() })
  await t.rejects(checkAnswers('deaf', `http://127.0.0.1:${(deaf.address() as { port: number }).port}`, 200), { message: /: no answer to OPTIONS from https:\/\/app\.example\.com within 0\.2 s$/ })
  // Answering its headers, never its body.
  const slow = createServer((_req, res) => { res.writeHead(200); res.write('x') }).listen(0, '127.0.0.1')
  await once(slow, 'listening')
  t.teardown(() => { slow.closeAllConnections(); slow.close() })
  await t.rejects(checkAnswers('slow', `http://127.0.0.1:${(slow.address() as { port: number }).port}`, 200), { message: /: the answer to OPTIONS from https:\/\/app\.example\.com never ended$/ })
})

t.test('the per-target table and its chart from a report: ratios, differences, amounts, gaps', async (t) => {
  const s = (rps: number, p99: number, cpu10k: number): { rps: number; p99: number; cpu10k: number } => ({ rps, p99, cpu10k })
  const report: Report = {
    meta: { node: 'v24', loader: 'wrk', nginx: true, pinned: true, cpus: 2, loadavg: [1], seconds: 5, rounds: 1, connections: 64, streamMB: 200, date: 'today' },
    samples: {
      ai: { direct: [s(100, 20, 1)], nginx: [s(98, 21, 1)], vite: [s(80, 19.5, 2)] },
      small: { direct: [s(2000, 1, 1)], nginx: [s(1000, 2, 1)], vite: [s(250, 8, 4)] },
      preflight: { vite: [s(500, 1, 1)] },
      stream: { direct: [{ ms: 100, growth: 1 }], vite: [{ ms: 300, growth: 40 }] }
    },
    idle: { start: 1, end: 2, floor: 3, targets: { nginx: 14, vite: 95 } }
  }
  const rows = peerRows(report)
  t.same(rows.map((r) => r.target), ['direct', 'nginx', 'vite'])
  t.same(rows.find((r) => r.target === 'vite')?.cells.map((c) => c.text), ['250 (0.25)', '500 (–)', '80.00 (0.80)', '19.50 (−0.5)', '300 (3.00)', '+40', '4.00 (4.00)', '95'])
  t.same(rows.find((r) => r.target === 'direct')?.cells.map((c) => c.text), ['2000 (2.00)', '–', '100 (1.00)', '20.00 (+0.0)', '100 (1.00)', '+1', '1.00 (1.00)', '–'])
  t.match(peersMarkdown(report, rows), /^\| target \| small POST req\/s \(× nginx\) \| preflight req\/s \(× nginx\) \| AI-shaped req\/s \(× direct\) \| AI-shaped p99 ms \(\+ms over direct\) \|/)
  t.match(peersMarkdown(report, rows), '\n| Vite dev-server proxy | 250 (0.25) | 500 (–) | 80.00 (0.80) | 19.50 (−0.5) | 300 (3.00) | +40 | 4.00 (4.00) | 95 |')
  t.equal(peerRows({ ...report, meta: { ...report.meta, versions: { vite: '8.4.0' } } }).find((r) => r.target === 'vite')?.label, 'Vite dev-server proxy (8.4.0)')
  const svg = chart(report, rows)
  t.match(svg, 'small POST req/s, × nginx (higher is better)')
  t.notMatch(svg, 'preflight req/s', 'no ratio, no panel')
  t.match(svg, 'stream ms, × direct (lower is better)')
  t.match(svg, 'servers on core 0, load on core 1')
  t.notMatch(chart({ ...report, meta: { ...report.meta, pinned: false } }), 'servers on core 0')
  t.match(svg, '>3.00</text>')

  const dir = tempDir(t)
  writeFileSync(join(dir, 'report.json'), JSON.stringify(report))
  execFileSync(process.execPath, [new URL('../bench/chart.ts', import.meta.url).pathname, join(dir, 'report.json'), join(dir, 'chart.svg')])
  t.equal(readFileSync(join(dir, 'chart.svg'), 'utf8'), svg, 'node bench/chart.ts redraws it from a --json file')
})

t.test('the sidecar against the best Node.js peer of each round', async (t) => {
  const report: Report = {
    meta: { node: 'v24', loader: 'wrk', nginx: false, pinned: true, cpus: 2, loadavg: [1], seconds: 5, rounds: 2, connections: 64, streamMB: 200, date: 'today' },
    samples: {
      small: { sidecar: [{ rps: 300 }, { rps: 450 }], fastify: [{ rps: 200 }, { rps: 100 }], express: [{ rps: 100 }, { rps: 300 }] },
      stream: { sidecar: [{ ms: 90, growth: 1 }, { ms: 120, growth: 1 }], vite: [{ ms: 100, growth: 1 }, { ms: 100, growth: 1 }], express: [{ ms: 150, growth: 1 }, { ms: 200, growth: 1 }] },
      preflight: { sidecar: [{ rps: 1 }, { rps: 1 }] },
      ai: { sidecar: [{ rps: 10 }, { rps: 10 }], vite: [{ rps: 5 }, { rps: 20 }] }
    },
    idle: { start: 1, end: 1, floor: 1 }
  }
  const ahead = summarise(report).filter((r) => r.case.startsWith('7 '))
  // small: 300 ÷ 200 and 450 ÷ 300, both 1.5; AI-shaped: 2 and 0.5, median 1.25; stream: 90 ÷ 100
  // and 120 ÷ 100, median 1.05.
  t.match(ahead, [
    { case: '7 vs Node.js peers (small)', result: 1.5, resultText: '1.500 × best Node.js peer', target: '≥ 1.5 × best Node.js peer', pass: true },
    { case: '7 vs Node.js peers (ai)', result: 1.25, target: '> 1 × best Node.js peer', pass: true },
    { case: '7 vs Node.js peers (stream)', measure: 'time ms', result: 1.05, target: '< 1 × best Node.js peer', pass: false }
  ])
  t.equal(ahead.length, 3, 'no row for a case no Node.js peer ran')
})

/** One HTTP/1.1 exchange on its own connection; resolves with the response, unread. */
function send (url: string, method: string, headers: Record<string, string>, body?: Buffer | string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/process/text`, { method, headers, agent: false }, resolve)
    req.on('error', reject)
    req.end(body)
  })
}
const text = async (res: IncomingMessage): Promise<string> => { let s = ''; for await (const c of res) s += String(c); return s }

t.test('the node floor: cached preflight answers, every body shape, a slow client, a client that leaves', async (t) => {
  const { proc: up, url: upstream } = await startUpstream([])
  t.teardown(() => stop(up))
  const { proc, url } = await startPrinting([], [new URL('../bench/floor.ts', import.meta.url).pathname, upstream])
  t.teardown(() => stop(proc))
  await checkAnswers('floor', url)
  const ORIGIN = 'https://app.example.com'

  const pre = async (headers: Record<string, string>): Promise<IncomingMessage> => { const r = await send(url, 'OPTIONS', headers); r.resume(); return r }
  t.equal((await pre({ origin: ORIGIN, 'access-control-request-method': 'POST' })).headers['access-control-allow-origin'], ORIGIN, 'no requested headers')
  t.notOk((await pre({ origin: ORIGIN, 'access-control-request-method': 'PUT' })).headers['access-control-allow-origin'], 'a method not allowed')
  t.notOk((await pre({ origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-evil' })).headers['access-control-allow-origin'], 'a header not allowed')
  // An OPTIONS that is no preflight is forwarded (the upstream answers it).
  t.equal((await pre({ origin: ORIGIN })).statusCode, 200)
  t.equal((await pre({})).statusCode, 200)
  // More distinct preflights than the caches hold: they are emptied, never grown without bound.
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  await Promise.all(Array.from({ length: 1001 }, async (_, i) => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request(`${url}/process/text`, { method: 'OPTIONS', agent, headers: { origin: `https://t${i}.example.com`, 'access-control-request-method': 'POST' } }, resolve).on('error', reject).end()
    })
    res.resume()
    if (res.headers['access-control-allow-origin'] !== `https://t${i}.example.com`) throw new Error(`preflight ${i}`)
  }))

  // Bodies: none (GET), empty, small in several chunks, chunked, and without an Origin.
  t.match(await text(await send(url, 'GET', {})), /processed_text/)
  t.match(await text(await send(url, 'POST', { origin: ORIGIN, 'content-length': '0' })), /processed_text/)
  const split = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${url}/process/text`, { method: 'POST', agent: false, headers: { origin: ORIGIN, 'content-length': '2000' } }, resolve)
    req.on('error', reject)
    req.write('x'.repeat(1000))
    setTimeout(() => req.end('y'.repeat(1000)), 50)
  })
  t.equal(split.headers['access-control-allow-origin'], ORIGIN, 'a small body that arrives in two chunks')
  await text(split)
  const chunked = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${url}/process/text`, { method: 'POST', agent: false, headers: { origin: 'https://evil.example.net' } }, resolve)
    req.on('error', reject)
    req.write('a')
    req.end('b')
  })
  t.notOk(chunked.headers['access-control-allow-origin'], 'a chunked body, from a foreign origin')
  await text(chunked)

  // A slow client: the floor pauses undici and resumes it on drain; every byte arrives.
  const bytes = 8 * 1024 * 1024
  const echo = (): Promise<IncomingMessage> => new Promise((resolve, reject) => {
    const req = request(`${url}/echo`, { method: 'POST', agent: false, headers: { origin: ORIGIN, 'content-length': String(bytes) } }, resolve)
    req.on('error', reject)
    req.end(Buffer.alloc(bytes))
  })
  const slow = await echo()
  slow.pause()
  await new Promise((resolve) => setTimeout(resolve, 300))
  let got = 0
  for await (const c of slow) got += (c as Buffer).length
  t.equal(got, bytes)
  // A slow client that leaves: the upstream exchange is aborted, and the floor serves on.
  const gone = await echo()
  gone.pause()
  await new Promise((resolve) => setTimeout(resolve, 300))
  gone.destroy()
  // A client that leaves before the answer: the upstream holds it 200 ms.
  const early = connect(Number(new URL(url).port), '127.0.0.1')
  await once(early, 'connect')
  early.end(`POST /process/text HTTP/1.1\r\nhost: x\r\norigin: ${ORIGIN}\r\nx-bench-delay: 200\r\ncontent-length: 2\r\n\r\n{}`)
  early.destroy()
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.match(await text(await send(url, 'POST', { origin: ORIGIN, 'content-length': '2' }, '{}')), /processed_text/, 'still serving')
})
