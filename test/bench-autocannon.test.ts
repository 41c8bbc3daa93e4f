// The benchmark harness (docs/BENCHMARKS.md) without nginx or wrk, as on a developer's laptop: autocannon
// loads the targets unpinned and the report leaves out every figure against nginx. Split from
// bench-smoke.test.ts so that neither file comes near tap's per-file limit on a busy CI machine.
import t from 'tap'
import { runBench } from '../bench/harness.ts'
import { summarise } from '../bench/report.ts'

// About 15 s alone, mostly starting and stopping processes.
t.setTimeout(120_000)

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
