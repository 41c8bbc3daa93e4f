// The benchmark harness (bench/, docs/BENCHMARKS.md), run with tiny durations: every case produces figures
// for every target, the report turns them into ratios against their targets, and the nginx it
// generates is a configuration nginx accepts. No figure is asserted: this machine is shared.
// CI installs nginx and wrk (.ci/install-system-deps); without them a developer's run skips.
// The autocannon run and the A/B comparison have files of their own (bench-autocannon, bench-ab):
// together in one file they took 50 s alone and passed tap's 120 s per-file limit in a CI run
// where the whole suite shared two cores.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CASES, ensure, freePort, ORIGINS, runBench, startPrinting, stop, streamEcho, waitForPort, within, type Report } from '../bench/harness.ts'
import { defaultLoader, run, wrkScript } from '../bench/load.ts'
import { nginxArgs, nginxBinary, nginxConfig } from '../bench/nginx.ts'
import { BEGIN, END, formatMarkdown, formatTable, median, replaceResults, summarise } from '../bench/report.ts'

const nginx = nginxBinary()
const wrk = defaultLoader() === 'wrk'
const missing = nginx === undefined || !wrk
if (missing && process.env.CI !== undefined) throw new Error('CI must install Debian\'s nginx and wrk (see .ci/install-system-deps)')
const skip = missing ? 'nginx or wrk not installed (apt-get install nginx wrk)' : false
// About 17 s alone; more headroom than tap's 30 s default when the whole suite shares two cores.
t.setTimeout(120_000)

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pai-bench-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('one run measures every case on every target, pinned, with wrk, and profiles the sidecar and the floor', { skip }, async (t) => {
  const dir = tempDir(t)
  const lines: string[] = []
  const report = await runBench({
    seconds: 1,
    rounds: 1,
    warmup: 0,
    cases: CASES,
    connections: 4,
    delayMs: 5,
    // Not a whole number of 64 KiB chunks: the last one is partial on both sides.
    streamBytes: 3 * 1024 * 1024 + 100,
    loader: 'wrk',
    nginx,
    pin: true,
    profileDir: dir,
    log: (line) => lines.push(line)
  })
  for (const c of ['ai', 'small'] as const) {
    for (const target of ['direct', 'sidecar', 'floor', 'nginx'] as const) {
      const [s] = report.samples[c]?.[target] ?? []
      t.ok((s?.rps as number) > 0 && (s?.p99 as number) > 0 && (s?.cpu10k as number) >= 0, `${c} ${target}`)
    }
  }
  t.same(Object.keys(report.samples.preflight ?? {}).sort(), ['floor', 'nginx', 'sidecar'], 'preflights go to the proxies only')
  t.ok((report.samples.stream?.sidecar?.[0]?.ms as number) > 0)
  t.ok((report.samples.stream?.floor?.[0]?.ms as number) > 0, 'the floor streams too')
  t.ok(report.idle.start > 0 && report.idle.end > 0 && report.idle.floor > 0)
  t.equal(lines.length, 15, 'one progress line per measurement')
  t.match(report.meta, { loader: 'wrk', nginx: true, rounds: 1 })

  const rows = summarise(report)
  t.same(rows.map((r) => `${r.case} ${r.measure}`), [
    '1 AI-shaped req/s', '1 AI-shaped p99 ms', '1 AI-shaped (nginx) req/s', '1 AI-shaped (nginx) p99 ms',
    '1 AI-shaped (node floor) req/s', '1 AI-shaped (node floor) p99 ms',
    '2 small POST req/s', '2 small POST p99 ms', '2 small POST (node floor) req/s',
    '3 preflight req/s', '3 preflight (node floor) req/s',
    '4 stream time ms', '4 stream peak RSS +MB', '4 stream (node floor) time ms', '4 stream (node floor) peak RSS +MB',
    '5 idle RSS MB', '6 CPU / 10k req CPU s', '6 CPU / 10k preflights CPU s',
    '6 CPU / 10k req (over floor) CPU s', '6 CPU / 10k preflights (over floor) CPU s'
  ])
  for (const r of rows) t.type(r.result, 'number', `${r.case} ${r.measure} has a result`)
  t.same(rows.filter((r) => r.pass !== undefined).map((r) => r.case), ['1 AI-shaped', '1 AI-shaped', '2 small POST', '3 preflight', '4 stream', '4 stream', '5 idle RSS'])
  t.match(formatTable(rows), /^case +measure +direct +sidecar +floor +nginx +result +target/)
  t.same(readdirSync(dir).sort(), ['floor.cpuprofile', 'sidecar.cpuprofile'], 'the sidecar and the floor wrote their CPU profiles at exit')
  const summary = execFileSync(process.execPath, [new URL('../bench/profile.ts', import.meta.url).pathname, join(dir, 'sidecar.cpuprofile'), '--top', '5'], { encoding: 'utf8' })
  t.match(summary, /^\d+ busy samples \(\d+ idle left out\)\n\nself time by function:\n( +\d+\.\d % {2}.+\n){5}\ninclusive time by function \(itself and everything it called\):\n100\.0 % {2}\(root\)/)
  t.match(summary, /self time by package:\n[^]*% {2}(fastify|undici|node core)/)
})

t.test('nginx accepts the generated configuration', { skip: nginx === undefined ? 'nginx not installed' : false }, async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig({ prefix: dir, port: await freePort(), upstream: 'http://127.0.0.1:9', keepalive: 64 }, ORIGINS))
  const out = execFileSync(nginx as string, nginxArgs(dir, true), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  t.equal(out, '')
})

t.test('the nginx allowlist is the sidecar\'s: exact origins, subdomain and port wildcards', async (t) => {
  const conf = nginxConfig({ prefix: '/p', port: 1, upstream: 'http://127.0.0.1:2', keepalive: 3 }, ORIGINS)
  t.match(conf, '"https://app.example.com" $http_origin;')
  t.match(conf, '"~^https://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.example\\.com$" $http_origin;')
  t.match(conf, '"~^http://localhost(:[0-9]+)?$" $http_origin;')
  t.match(conf, 'server 127.0.0.1:2;')
  t.match(conf, 'proxy_request_buffering off;')
})

t.test('the wrk script sends the request and prints one JSON line', async (t) => {
  const lua = wrkScript({ url: 'http://x', method: 'OPTIONS', headers: { origin: 'https://a.example' }, connections: 1, seconds: 1 })
  t.match(lua, 'wrk.method = "OPTIONS"\nwrk.headers["origin"] = "https://a.example"\n')
  t.notMatch(lua, 'wrk.body')
})

t.test('a missing binary falls back: autocannon instead of wrk, no nginx', async (t) => {
  t.equal(defaultLoader('/nonexistent/wrk'), 'autocannon')
  t.equal(nginxBinary('/nonexistent/nginx'), undefined)
})

t.test('the streaming case refuses a short or failed echo', async (t) => {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(req.url === '/short/echo' ? 200 : 500).end('abc') })
  }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  await t.rejects(streamEcho(`${url}/short`, 10), { message: `${url}/short/echo sent back 3 of 10 bytes` })
  await t.rejects(streamEcho(url, 10), { message: `${url}/echo answered 500` })
  t.throws(() => ensure(false, 'broken'), { message: 'broken' })
})

t.test('every wait of the harness is bounded: a broken run fails with its reason, never hangs', async (t) => {
  t.equal(await within(Promise.resolve(7), 1000, 'unused'), 7)
  await t.rejects(within(new Promise(() => {}), 50, 'too slow'), { message: 'too slow' })

  const node = (code: string): string[] => ['-e', code]
  await t.rejects(startPrinting([], node('process.exit(0)')), { message: 'node -e process.exit(0) exited before printing its URL' })
  // Silent, but alive: it writes its pid, so that the kill that follows the refusal can be seen.
  const pidFile = join(tempDir(t), 'pid')
  await t.rejects(startPrinting([], node(`require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`), 2000), { message: /^node -e .+ printed no URL within 2 s$/ })
  const pid = Number(readFileSync(pidFile, 'utf8'))
  const gone = async (): Promise<boolean> => {
    for (let i = 0; i < 50; i++) {
      try { process.kill(pid, 0) } catch { return true }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    process.kill(pid, 'SIGKILL') // left running: fail, not hang on its open stdout
    return false
  }
  t.ok(await gone(), 'and it is killed, not left running')

  // Alive, printing, but never listening on the port it is waited for; then deaf to SIGTERM.
  const { proc } = await startPrinting([], node("process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"))
  const port = await freePort()
  await t.rejects(waitForPort(port, proc.child, 200), { message: new RegExp(`: nothing listened on port ${port} within 0\\.2 s$`) })
  await stop(proc, 200)
  t.equal(proc.child.signalCode, 'SIGKILL', 'killed once the grace time was over')

  const deaf = createServer((req) => { req.resume() }).listen(0, '127.0.0.1')
  await once(deaf, 'listening')
  t.teardown(() => { deaf.closeAllConnections(); deaf.close() })
  const url = `http://127.0.0.1:${(deaf.address() as { port: number }).port}`
  await t.rejects(streamEcho(url, 10, 200), { message: `${url}/echo stalled: nothing moved for 0.2 s` })

  await t.rejects(run([], 'sleep', ['5'], 200), { message: 'sleep was still running after 0.2 s and was killed' })
  await t.rejects(run([], 'false', [], 5000), { message: /^Command failed: false/ }, 'any other failure is passed on as it is')
})

t.test('the node floor: preflights allowed by origin only, and a failed exchange is never a success', async (t) => {
  // An upstream that is gone: every forwarded request fails.
  const port = await freePort()
  const { proc, url } = await startPrinting([], [new URL('../bench/floor.ts', import.meta.url).pathname, `http://127.0.0.1:${port}`])
  t.teardown(() => stop(proc))
  const preflight = (origin: string): Promise<Response> => fetch(`${url}/process/text`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } })
  const allowed = await preflight('https://app.example.com')
  t.equal(allowed.status, 204)
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com')
  const foreign = await preflight('https://evil.example.net')
  t.equal(foreign.status, 204, 'like the nginx configuration: 204, without the allow headers')
  t.equal(foreign.headers.get('access-control-allow-origin'), null)
  await t.rejects(fetch(`${url}/process/text`, { method: 'POST', body: '{}' }), TypeError, 'the connection is reset, never answered 2xx')
})

t.test('the report pairs rounds, takes medians and writes its Markdown block', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([]), undefined)
  const report: Report = {
    meta: { node: 'v24', loader: 'wrk', nginx: true, pinned: true, cpus: 2, loadavg: [1, 2, 3], seconds: 5, rounds: 2, connections: 64, streamMB: 200, date: 'today' },
    samples: {
      small: {
        direct: [{ rps: 1000, p99: 1, cpu10k: 1 }, { rps: 1000, p99: 1, cpu10k: 1 }],
        sidecar: [{ rps: 600, p99: 3, cpu10k: 2 }, { rps: 400, p99: 5, cpu10k: 2 }],
        floor: [{ rps: 800, p99: 2, cpu10k: 1.6 }, { rps: 800, p99: 2, cpu10k: 1.6 }],
        nginx: [{ rps: 1000, p99: 2, cpu10k: 1 }, { rps: 1000, p99: 2, cpu10k: 1 }]
      },
      stream: { direct: [{ ms: 100, growth: 0 }], sidecar: [{ ms: 120, growth: 20 }] }
    },
    idle: { start: 70, end: 80, floor: 50 }
  }
  const rows = summarise(report)
  t.match(rows.find((r) => r.case === '2 small POST' && r.measure === 'req/s'), { sidecar: 500, result: 0.5, resultText: '0.500 × nginx', pass: true })
  t.match(rows.find((r) => r.case === '2 small POST' && r.measure === 'p99 ms'), { result: 2, resultText: '+2.00 ms', pass: undefined })
  t.match(rows.find((r) => r.measure === 'time ms'), { resultText: '1.200 × direct', pass: true })
  t.match(rows.find((r) => r.measure === 'peak RSS +MB'), { resultText: '+20.0 MB', pass: false })
  t.match(rows.find((r) => r.case === '5 idle RSS'), { sidecar: 70, floor: 50, resultText: '70.0 MB (80.0 after load)', pass: false })
  t.match(rows.find((r) => r.case === '2 small POST (node floor)'), { floor: 800, result: 0.8, resultText: '0.800 × nginx', target: 'reference', pass: undefined })
  t.match(rows.find((r) => r.case === '6 CPU / 10k req (over floor)'), { result: 1.25, resultText: '1.250 × floor' })
  const table = formatTable(rows)
  t.match(table, /2 small POST +req\/s +1000 +500 +800 +1000 +0\.500 × nginx +≥ 0\.5 × nginx +PASS/)
  t.match(table, /4 stream +peak RSS \+MB +0\.00 +20\.00 +– +– +\+20\.0 MB +≤ 16 MB +FAIL/)

  const md = formatMarkdown(report, rows)
  t.match(md, 'Run of today: Node v24, load by wrk, 2 CPUs (servers pinned to core 0, load to core 1), 2 rounds × 5 s')
  t.match(md, '| case | measure | direct | sidecar | floor | nginx | result | target | verdict |')
  t.match(formatMarkdown({ ...report, meta: { ...report.meta, pinned: false, nginx: false } }, rows), '2 CPUs (not pinned), 2 rounds × 5 s per target and case, 64 connections, 200 MB streamed, load average at the end 1 / 2 / 3, nginx not installed.')
  const doc = `# Benchmarks\nby hand\n${BEGIN}\nold\n${END}\nafter\n`
  t.equal(replaceResults(doc, 'new'), `# Benchmarks\nby hand\n${BEGIN}\nnew\n${END}\nafter\n`)
  t.throws(() => replaceResults('# nothing', 'new'), /no <!-- bench:results -->/)
})
