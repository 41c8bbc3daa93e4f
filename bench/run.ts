// `npm run bench [-- --seconds 5 --rounds 3 --cases ai,small,preflight,stream --stream-mb 200
//   --loader wrk|autocannon --no-nginx --no-pin --profile DIR --json FILE --no-docs]`
// Prints the table of the benchmark's cases with their ratios and targets and writes the results
// block of docs/BENCHMARKS.md. See bench/harness.ts for the method.
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CASES, DEFAULTS, runBench, type CaseName } from './harness.ts'
import { defaultLoader, type Loader } from './load.ts'
import { nginxBinary } from './nginx.ts'
import { formatMarkdown, formatTable, replaceResults, summarise } from './report.ts'

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
    'no-pin': { type: 'boolean', default: false },
    profile: { type: 'string' },
    json: { type: 'string' },
    'no-docs': { type: 'boolean', default: false }
  }
})
const cases = (v.cases as string).split(',') as CaseName[]
const unknown = cases.filter((c) => !CASES.includes(c))
if (unknown.length > 0) {
  console.error(`unknown case(s) ${unknown.join(', ')}; known: ${CASES.join(', ')}`)
  process.exit(2)
}
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
  pin: v['no-pin'] !== true,
  profileDir: v.profile,
  log: (line) => process.stderr.write(`${line}\n`)
})
const rows = summarise(report)
console.log(formatTable(rows))
if (report.meta.nginx === false) console.log('\nnginx is not installed (apt-get install nginx): the cases against nginx have no figure.')
if (v.json !== undefined) writeFileSync(v.json, `${JSON.stringify({ ...report, rows }, null, 2)}\n`)
if (v['no-docs'] !== true) {
  const path = new URL('../docs/BENCHMARKS.md', import.meta.url)
  writeFileSync(path, replaceResults(readFileSync(path, 'utf8'), formatMarkdown(report, rows)))
  console.log('\ndocs/BENCHMARKS.md: results updated')
}
