// The request fuzzer of test/fuzz.test.ts, run for longer:
//   node bench/fuzz.ts --iterations 20000 --seed 123
//   node bench/fuzz.ts --seed 123 --start 4711 --iterations 1 --verbose   (re-run one case)
// Prints progress and a summary of the statuses seen; exits 1 when an invariant was violated.
import { parseArgs } from 'node:util'
import { formatViolation, healthyRequest, FIXED_FAULTS, generateCase, notPermitted, runFuzz, startFuzzTarget, type FuzzSummary, type FixedFault } from '../test/fixtures/fuzz.ts'
import { show } from '../test/fixtures/raw.ts'

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: process.env.FUZZ_ITERATIONS ?? '20000' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? String(Date.now() % 1_000_000) },
    start: { type: 'string', default: '0' },
    every: { type: 'string', default: '1000' },
    verbose: { type: 'boolean', default: false }
  }
})
const iterations = Number(values.iterations)
const seed = Number(values.seed)
const start = Number(values.start)
if (!Number.isInteger(iterations) || iterations < 1 || !Number.isInteger(seed) || !Number.isInteger(start) || start < 0) {
  console.error('usage: node bench/fuzz.ts [--iterations N] [--seed S] [--start I] [--every N] [--verbose]')
  process.exit(2)
}

const sorted = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')
const knownCount = (s: FuzzSummary): number => Object.values(s.knownCounts).reduce((n: number, k) => n + (k ?? 0), 0)

const target = await startFuzzTarget()
console.log(`fuzzing ${target.sc.url} (upstream ${target.up.url}): seed ${seed}, cases ${start}..${start + iterations - 1}`)
if (values.verbose) {
  for (let i = start; i < start + Math.min(iterations, 20); i++) console.log(`case ${i}: ${show(generateCase(seed, i, target.host).bytes)}`)
}
const t0 = performance.now()
const summary = await runFuzz({
  seed,
  iterations,
  start,
  target,
  progressEvery: Number(values.every),
  maxViolations: 200,
  onProgress: (done, s) => {
    const rate = done / ((performance.now() - t0) / 1000)
    console.log(`${String(done).padStart(7)}/${iterations}  ${rate.toFixed(0)} req/s  violations=${s.violations.length} known=${knownCount(s)}  ${sorted(s.statuses)}`)
  }
})
const health = await healthyRequest(target.sc.url).catch((err: Error) => ({ status: 0, body: err.message }))
const forbidden = target.up.received.filter((r) => notPermitted(r.method, r.url) !== undefined)
await target.close()

console.log(`\n${iterations} cases in ${(summary.ms / 1000).toFixed(1)} s (${(iterations / (summary.ms / 1000)).toFixed(0)} req/s), seed ${seed}`)
console.log(`statuses:    ${sorted(summary.statuses)}`)
console.log(`error codes: ${sorted(summary.codes)}`)
console.log(`corruptions: ${sorted(summary.corruptions)}`)
console.log(`forwarded to the upstream: ${summary.forwarded}; forbidden among them: ${forbidden.length}`)
console.log(`healthy at the end: ${health.status === 200 ? 'yes' : `NO (${health.status} ${health.body})`}`)
for (const bug of Object.keys(summary.known) as FixedFault[]) {
  const list = summary.known[bug] ?? []
  console.log(`\nfixed fault seen again: ${bug} (${summary.knownCounts[bug] ?? 0} cases): ${FIXED_FAULTS[bug]}`)
  for (const v of list.slice(0, 2)) console.log(formatViolation(v))
}
if (summary.violations.length > 0) {
  console.log(`\n${summary.violations.length} VIOLATION(S):`)
  for (const v of summary.violations) console.log(formatViolation(v))
}
process.exit(summary.violations.length > 0 || forbidden.length > 0 || health.status !== 200 ? 1 : 0)
