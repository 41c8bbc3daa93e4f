// The HTTPS cases of the benchmark (bench/tls-cases.ts), run with tiny durations: the TLS sidecar and
// nginx with TLS and HTTP/2 each answer every case without a failed request, h2load's summary is read
// and the results block of docs/BENCHMARKS.md is the one it rewrites. No figure is asserted: this
// machine is shared. CI installs h2load and nginx (.ci/install-system-deps).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { nginxBinary } from '../bench/nginx.ts'
import { replaceResults } from '../bench/report.ts'
import { formatTls, h2loadArgs, h2loadBinary, parseH2load, runTlsBench, TLS_BEGIN, TLS_CASES, TLS_END, tlsRows } from '../bench/tls-cases.ts'

const nginx = nginxBinary()
const missing = h2loadBinary() === undefined || nginx === undefined
if (missing && process.env.CI !== undefined) throw new Error('CI must install Debian\'s nghttp2-client and nginx (see .ci/install-system-deps)')
t.setTimeout(120_000)

t.test('every HTTPS case runs against the TLS sidecar and nginx, and lands in its results block', { skip: missing ? 'h2load or nginx not installed (apt-get install nghttp2-client nginx)' : false }, async (t) => {
  const lines: string[] = []
  const report = await runTlsBench({ seconds: 1, rounds: 1, clients: 4, streams: 2, pin: false, nginx, log: (l) => lines.push(l) })
  t.same(report.rows.map((r) => r.case), TLS_CASES.map((c) => c.name))
  for (const r of report.rows) t.ok(r.sidecar > 0 && (r.nginx as number) > 0, `${r.case}: both answered`)
  t.equal(lines.length, TLS_CASES.length * 2, 'one line per case and target')
  const table = formatTls(report)
  t.match(table, /^HTTPS cases: 1 s × 1 rounds, 4 requests in flight \(HTTP\/2: 2 streams per connection\), pinned: false, node v\d+/)
  t.match(table, /\n\| small POST, HTTP\/2 \| \d+ \| \d+ \| \d+\.\d\d \|/)
  const doc = readFileSync(new URL('../docs/BENCHMARKS.md', import.meta.url), 'utf8')
  const rewritten = replaceResults(doc, table, TLS_BEGIN, TLS_END)
  t.ok(rewritten.includes(`${TLS_BEGIN}\n${table}\n${TLS_END}`), 'docs/BENCHMARKS.md has the block npm run bench rewrites')
})

t.test('h2load: the same requests in flight over HTTP/1.1 and HTTP/2, and a summary without figures is an error', async (t) => {
  const [h1, h2] = TLS_CASES as [typeof TLS_CASES[0], typeof TLS_CASES[0]]
  const o = { seconds: 5, clients: 64, streams: 8 }
  t.same(h2loadArgs(o, h1, 'https://x', 'b.json').slice(0, 6), ['-D', '5', '-c', '64', '-m', '1'])
  t.same(h2loadArgs(o, h2, 'https://x', 'b.json').slice(0, 6), ['-D', '5', '-c', '8', '-m', '8'])
  t.ok(h2loadArgs(o, h1, 'https://x', 'b.json').includes('--h1'))
  t.same(h2loadArgs({ ...o, clients: 4, streams: 8 }, h2, 'https://x', 'b.json').slice(2, 4), ['-c', '1'], 'at least one connection')
  const summary = (failed: number, errored: number, c4: number, c5: number): string =>
    `finished in 1.00s, 1234.50 req/s, 1MB/s\nrequests: 10 total, 10 started, 10 done, 7 succeeded, ${failed} failed, ${errored} errored, 0 timeout\nstatus codes: 7 2xx, 0 3xx, ${c4} 4xx, ${c5} 5xx\n`
  t.equal(parseH2load(summary(0, 0, 0, 0), 'x'), 1234.5)
  t.throws(() => parseH2load(summary(2, 1, 1, 1), 'sidecar, preflight'), { message: 'sidecar, preflight: 5 requests failed' })
  t.throws(() => parseH2load(summary(0, 0, 1, 0), 'x'), /1 requests failed/, 'a 4xx answer is a failed request')
  t.throws(() => parseH2load('no server is listening', 'x'), /x: h2load printed no result/)
  t.equal(h2loadBinary('/nonexistent/h2load'), undefined)
})

t.test('without nginx the sidecar alone is reported, its ratio a dash', async (t) => {
  const samples = Object.fromEntries(TLS_CASES.map((c) => [c.name, { sidecar: [3, 1, 2] }]))
  const rows = tlsRows(samples)
  t.same(rows[0], { case: TLS_CASES[0]?.name, sidecar: 2, nginx: undefined }, 'the median of the rounds')
  const table = formatTls({ meta: { seconds: 1, rounds: 3, clients: 4, streams: 2, pinned: false, node: 'v24' }, rows })
  t.match(table, /\n\| preflight, HTTP\/2 \| 2 \| — \| — \|$/)
})
