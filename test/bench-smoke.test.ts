// The benchmark harness of issue 8 (bench/), run with tiny durations: every case produces figures
// for every target, the report turns them into ratios against their targets, and the nginx it
// generates is a configuration nginx accepts. No figure is asserted: this machine is shared.
// CI installs nginx and wrk (.ci/install-system-deps); without them a developer's run skips.
import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { CASES, ensure, freePort, ORIGINS, runBench, streamEcho, type Report } from '../bench/harness.ts'
import { defaultLoader, wrkScript } from '../bench/load.ts'
import { formatAb, runAb, worktree } from '../bench/compare.ts'
import { nginxArgs, nginxBinary, nginxConfig } from '../bench/nginx.ts'
import { BEGIN, END, formatMarkdown, formatTable, median, replaceResults, summarise } from '../bench/report.ts'

const nginx = nginxBinary()
const wrk = defaultLoader() === 'wrk'
const missing = nginx === undefined || !wrk
if (missing && process.env.CI !== undefined) throw new Error('CI must install Debian\'s nginx and wrk (see .ci/install-system-deps)')
const skip = missing ? 'nginx or wrk not installed (apt-get install nginx wrk)' : false
// About 25 s alone; more headroom than tap's 30 s default when the whole suite shares two cores.
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
  t.match(summary, /^\d+ busy samples \(\d+ idle left out\)\n\nself time by function:\n( +\d+\.\d %  .+\n){5}\ninclusive time by function \(itself and everything it called\):\n100\.0 %  \(root\)/)
  t.match(summary, /self time by package:\n[^]*%  (fastify|undici|node core)/)
})

t.test('without nginx: autocannon, not pinned, no figure against nginx', async (t) => {
  const report = await runBench({
    seconds: 0.5,
    rounds: 1,
    warmup: 0.5,
    cases: ['small'],
    connections: 2,
    delayMs: 0,
    streamBytes: 0,
    loader: 'autocannon',
    nginx: undefined,
    pin: false,
    log: () => {}
  })
  t.match(report.meta, { loader: 'autocannon', nginx: false, pinned: false })
  t.same(Object.keys(report.samples.small ?? {}).sort(), ['direct', 'floor', 'sidecar'])
  t.ok((report.samples.small?.sidecar?.[0]?.rps as number) > 0)
  const rows = summarise(report)
  const small = rows.find((r) => r.case === '2 small POST' && r.measure === 'req/s')
  t.match(small, { result: undefined, resultText: 'n/a (no nginx)', pass: undefined, nginx: undefined })
  t.same(rows.map((r) => r.case[0]), ['2', '2', '2', '5', '6', '6'], 'cases not run have no row')
  t.match(rows.find((r) => r.case === '6 CPU / 10k req (over floor)'), { resultText: /^\d+\.\d{3} × floor$/ }, 'the floor needs no nginx')
})

t.test('the A/B run loads two sidecars in turn and reports medians and per-round ratios', { skip: wrk ? false : 'wrk not installed' }, async (t) => {
  const root = new URL('..', import.meta.url).pathname
  const lines: string[] = []
  // The same checkout on both sides (an A/A run): what matters here is the shape, not a figure.
  const result = await runAb({ baseDir: root, headDir: root, cases: ['small', 'preflight'], seconds: 0.5, rounds: 2, warmup: 0.2, connections: 2, loader: 'wrk', pin: true, log: (l) => lines.push(l) })
  t.same(Object.keys(result), ['small', 'preflight'])
  for (const r of Object.values(result)) {
    t.ok(r.base.rps > 0 && r.head.rps > 0 && r.base.cpu10k >= 0 && r.head.cpu10k >= 0)
    t.ok(r.rpsRatio > 0)
  }
  t.same(lines.slice(0, 4), ['round 1/2 small base done', 'round 1/2 small head done', 'round 1/2 preflight base done', 'round 1/2 preflight head done'])
  t.same(lines.slice(4, 6), ['round 2/2 small head done', 'round 2/2 small base done'], 'the order alternates between rounds')
  const table = formatAb({ small: { base: { rps: 1000, cpu10k: 2 }, head: { rps: 1500, cpu10k: 1.5 }, rpsRatio: 1.5, cpuRatio: 0.75 } })
  t.match(table, /^case +base req\/s +head req\/s +head ÷ base +base CPU s\/10k +head CPU s\/10k +head ÷ base\nsmall +1000 +1500 +1\.500 +2\.000 +1\.500 +0\.750$/)
})

t.test('the A/B base: a detached worktree of the ref, with the checkout\'s node_modules, removed afterwards', async (t) => {
  const repo = tempDir(t)
  const git = (...args: string[]): string => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' })
  git('init', '-q')
  writeFileSync(join(repo, 'file.txt'), 'first\n')
  git('add', 'file.txt')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.test', 'commit', '-qm', 'first')
  const first = git('rev-parse', 'HEAD').trim()
  writeFileSync(join(repo, 'file.txt'), 'second\n')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.test', 'commit', '-qam', 'second')
  mkdirSync(join(repo, 'node_modules'))
  const tree = worktree(repo, first)
  t.equal(readFileSync(join(tree.dir, 'file.txt'), 'utf8'), 'first\n', 'the base revision, not the working tree')
  t.equal(realpathSync(join(tree.dir, 'node_modules')), realpathSync(join(repo, 'node_modules')), 'dependencies are shared, not installed again')
  tree.remove()
  t.notOk(existsSync(dirname(tree.dir)), 'removed, with the temporary directory that held it')
  t.notMatch(git('worktree', 'list'), tree.dir, 'and unregistered from the repository')
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

t.test('the node floor: preflights allowed by origin only, and a failed exchange is never a success', async (t) => {
  // An upstream that is gone: every forwarded request fails.
  const port = await freePort()
  const floor = spawn(process.execPath, [new URL('../bench/floor.ts', import.meta.url).pathname, `http://127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => floor.kill())
  const [line] = await once(floor.stdout, 'data') as [Buffer]
  const url = line.toString().trim()
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
