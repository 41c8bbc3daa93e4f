// A randomized property test of the public app with a FIXED seed (override: FUZZ_SEED, FUZZ_ITERATIONS;
// bench/fuzz.ts runs the same generator for longer). See test/fixtures/fuzz.ts for the generator and
// the invariants: catalogue statuses only and never a hang or a 5xx; nothing the allowlist forbids
// reaches the upstream; responses stay paired with requests; the sidecar is still healthy at the end.
import t from 'tap'
import { formatViolation, healthyRequest, FIXED_FAULTS, notPermitted, runFuzz, startFuzzTarget, type FuzzSummary, type FuzzTarget, type FixedFault } from './fixtures/fuzz.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20260401)
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 300)

let target: FuzzTarget
let summary: FuzzSummary
t.before(async () => {
  target = await startFuzzTarget()
  summary = await runFuzz({ seed: SEED, iterations: ITERATIONS, target })
})
t.teardown(async () => { await target.close() })

t.test(`fuzz: ${ITERATIONS} requests, seed ${SEED}: every invariant holds`, async (t) => {
  t.comment(`statuses ${JSON.stringify(summary.statuses)}; codes ${JSON.stringify(summary.codes)}; forwarded ${summary.forwarded}; ${Math.round(summary.ms)} ms`)
  t.comment(`fixed faults seen again (must be none, subtests below): ${JSON.stringify(summary.knownCounts)}`)
  for (const v of summary.violations) t.comment(formatViolation(v))
  t.equal(summary.violations.length, 0, `no invariant violated (seed ${SEED}; each violation above names its case)`)
  // The run did exercise both sides of the allowlist.
  t.ok(summary.forwarded > 0, 'some requests were forwarded')
  t.ok(Object.keys(summary.statuses).length >= 5, 'a variety of outcomes was produced')
})

t.test('fuzz: every request the upstream received is allowlisted', async (t) => {
  const bad = target.up.received.map((r) => ({ r, why: notPermitted(r.method, r.url) })).filter((x) => x.why !== undefined)
  t.same(bad.map((x) => `${x.r.method} ${x.r.url}: ${x.why}`), [], `seed ${SEED}`)
})

t.test('fuzz: the sidecar is still healthy at the end', async (t) => {
  const res = await healthyRequest(target.sc.url)
  t.equal(res.status, 200)
  t.match(res.body, /"url":"\/process\/text"/)
  // The sidecar logs "unexpected error" only for a fault of its own (a 500): none may occur.
  const unexpected = target.sc.logs.filter((l) => l.msg === 'unexpected error')
  t.same(unexpected.map((l) => JSON.stringify(l).slice(0, 300)), [], 'no unexpected errors logged')
})

// Faults the fuzzer once found (test/hostile.test.ts reproduces most of them); all are fixed, and each
// subtest below asserts that its fault does not recur.
for (const known of Object.keys(FIXED_FAULTS) as FixedFault[]) {
  t.test(`fuzz: fixed fault does not recur: ${known} (${FIXED_FAULTS[known]})`, async (t) => {
    const seen = summary.known[known] ?? []
    for (const v of seen.slice(0, 3)) t.comment(formatViolation(v))
    t.equal(summary.knownCounts[known] ?? 0, 0, `${known} (seed ${SEED})`)
  })
}
