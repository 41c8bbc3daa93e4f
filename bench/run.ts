// `npm run bench [-- --seconds 5 --rounds 3 --cases ai,small,preflight,stream --stream-mb 200
//   --loader wrk|autocannon --no-nginx --peers fastify,vite,express,haproxy,caddy --no-peers
//   --no-pin --profile DIR --json FILE --no-docs --no-tls]`
// Prints the table of the benchmark's cases with their ratios and targets, and every target (peers included)
// per case; then the HTTPS cases against nginx (bench/tls-cases.ts, with h2load; --no-tls leaves them
// out); writes the results blocks of docs/BENCHMARKS.md and its chart, docs/bench-peers.svg.
// See bench/harness.ts for the method, bench/peers.ts for the peers.
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CASES, DEFAULTS, runBench, type CaseName } from './harness.ts'
import { defaultLoader, type Loader } from './load.ts'
import { chart } from './chart.ts'
import { nginxBinary } from './nginx.ts'
import { availablePeers, parsePeers, PEERS } from './peers.ts'
import { formatMarkdown, formatPeers, formatTable, peerRows, replaceResults, summarise } from './report.ts'
import { formatTls, h2loadBinary, runTlsBench, TLS_BEGIN, TLS_END } from './tls-cases.ts'

const { values: v } = parseArgs({
  options: {
    seconds: { type: 'string', default: String(DEFAULTS.seconds) },
    rounds: { type: 'string', default: String(DEFAULTS.rounds) },
    warmup: { type: 'string', default: String(DEFAULTS.warmup) },
    cases: { type: 'string', default: CASES.join(',') },
    connections: { type: 'string', default: String(DEFAULTS.connections) },
    'stream-mb': { type: 'string', default: String(DEFAULTS.streamBytes / 1024 / 1024) },
    loader: { type: 'string' },
    'no-nginx': { type: 'boolean', default: false },
    peers: { type: 'string', default: PEERS.join(',') },
    'no-peers': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    profile: { type: 'string' },
    json: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    'no-tls': { type: 'boolean', default: false }
  }
})
const cases = (v.cases as string).split(',') as CaseName[]
const unknown = cases.filter((c) => !CASES.includes(c))
if (unknown.length > 0) {
  console.error(`unknown case(s) ${unknown.join(', ')}; known: ${CASES.join(', ')}`)
  process.exit(2)
}
const wanted = parsePeers(v.peers as string)
if (wanted.unknown.length > 0) {
  console.error(`unknown peer(s) ${wanted.unknown.join(', ')}; known: ${PEERS.join(', ')}`)
  process.exit(2)
}
const { peers, missing } = availablePeers(v['no-peers'] === true ? [] : wanted.peers)
for (const p of missing) process.stderr.write(`${p} is not installed (apt-get install ${p}): left out of this run\n`)
const loader = (v.loader ?? defaultLoader()) as Loader
const report = await runBench({
  seconds: Number(v.seconds),
  rounds: Number(v.rounds),
  warmup: Number(v.warmup),
  cases,
  connections: Number(v.connections),
  delayMs: DEFAULTS.delayMs,
  streamBytes: Number(v['stream-mb']) * 1024 * 1024,
  loader,
  nginx: v['no-nginx'] === true ? undefined : nginxBinary(),
  peers,
  pin: v['no-pin'] !== true,
  profileDir: v.profile,
  log: (line) => process.stderr.write(`${line}\n`)
})
const rows = summarise(report)
console.log(formatTable(rows))
if (report.meta.nginx === false) console.log('\nnginx is not installed (apt-get install nginx): the cases against nginx have no figure.')
const targets = peerRows(report)
console.log(`\n${formatPeers(report, targets)}`)
for (const p of missing) console.log(`${p} is not installed (apt-get install ${p}): left out.`)
// The HTTPS cases, with the same durations, the same requests in flight and the same pinning.
const withTls = v['no-tls'] !== true && h2loadBinary() !== undefined
if (v['no-tls'] !== true && !withTls) console.log('\nh2load is not installed (apt-get install nghttp2-client): the HTTPS cases are left out.')
const tls = withTls
  ? await runTlsBench({ seconds: Number(v.seconds), rounds: Number(v.rounds), clients: Number(v.connections), streams: 8, pin: v['no-pin'] !== true, nginx: v['no-nginx'] === true ? undefined : nginxBinary(), log: (line) => process.stderr.write(`${line}\n`) })
  : undefined
if (tls !== undefined) console.log(`\n${formatTls(tls)}`)
if (v.json !== undefined) writeFileSync(v.json, `${JSON.stringify({ ...report, rows, targets, tls }, null, 2)}\n`)

if (v['no-docs'] !== true) {
  const path = new URL('../docs/BENCHMARKS.md', import.meta.url)
  const doc = replaceResults(readFileSync(path, 'utf8'), formatMarkdown(report, rows))
  writeFileSync(path, tls === undefined ? doc : replaceResults(doc, formatTls(tls), TLS_BEGIN, TLS_END))
  writeFileSync(new URL('../docs/bench-peers.svg', import.meta.url), chart(report, targets))
  console.log('\ndocs/BENCHMARKS.md: results updated; docs/bench-peers.svg: chart redrawn')
}
