// The Prometheus rules, their unit tests, the Grafana dashboard and docs/METRICS.md, checked against each
// other and against sidecar/metrics.ts: promtool validates and unit-tests the alerts and parses every
// dashboard query; every `pai_sidecar_*` name a query uses must be documented (or a prom-client default
// metric); every metric the sidecar declares must be documented.
// promtool comes from Debian's `prometheus` package. Without it these subtests are skipped locally and
// fail in CI (CI installs it).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry, collectDefaultMetrics } from 'prom-client'
import { parse, stringify } from 'yaml'

const root = fileURLToPath(new URL('..', import.meta.url))
// Grafana's datasource variable, as the dashboard spells it.
// eslint-disable-next-line no-template-curly-in-string
const DATASOURCE = '${datasource}'
const ALERTS = 'charts/pai-cors-sidecar/files/alerts.yaml'
const ALERT_TESTS = 'test/rules/alerts.test.yaml'
const DASHBOARD = 'charts/pai-cors-sidecar/files/dashboard.json'
const METRICS_DOC = 'docs/METRICS.md'
const METRICS_SOURCE = 'sidecar/metrics.ts'
const RUNBOOK = 'https://github.com/pai-cors-sidecar/pai-cors-sidecar/blob/main/docs/METRICS.md#'

/** The alerts docs/METRICS.md and the chart promise; a rename must be deliberate. */
const EXPECTED_ALERTS = [
  'PaiSidecarUpstreamDown',
  'PaiSidecarHigh5xxRatio',
  'PaiSidecarCorsDenialsSpike',
  'PaiSidecarQueueSaturated',
  'PaiSidecarUpstreamErrors',
  'PaiSidecarConfigReloadFailed',
  'PaiSidecarWebSocketOriginDenied',
  'PaiSidecarAuthFailuresSpike',
  'PaiSidecarJwksUnreachable',
  'PaiSidecarCertificateExpiringSoon'
]
/** Metrics that come with admission control (a parallel change); the names are fixed. */
const QUEUE_METRICS = ['pai_sidecar_queue_depth', 'pai_sidecar_queue_capacity', 'pai_sidecar_queue_rejections_total']

const read = (path: string): string => readFileSync(join(root, path), 'utf8')

interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface RuleFile { groups: { name: string; rules: Rule[] }[] }
interface AlertTestCase { alertname: string; eval_time: string; exp_alerts?: unknown[] }
interface RuleTestFile { rule_files: string[]; tests: { name?: string; alert_rule_test?: AlertTestCase[] }[] }
interface Target { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }
interface Panel { id: number; type: string; title: string; datasource?: { type?: string; uid?: string }; targets?: Target[]; panels?: Panel[] }
interface Variable { type: string; name: string; query?: unknown; definition?: string }
interface Dashboard { schemaVersion: number; uid: string; title: string; panels: Panel[]; templating: { list: Variable[] } }

const ruleFile = parse(read(ALERTS)) as RuleFile
const alerts = ruleFile.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined)
const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard
const doc = read(METRICS_DOC)

// ---------------------------------------------------------------------------------------------- promtool

interface Run { status: number | null; output: string }

function promtool (args: string[], cwd = root): Run {
  const r = spawnSync(process.env.PROMTOOL ?? 'promtool', args, { cwd, encoding: 'utf8', timeout: 120_000 })
  const output = [r.stdout, r.stderr, r.error?.message].filter((s) => s !== undefined && s !== '').join('\n')
  return { status: r.status, output }
}

const probe = spawnSync(process.env.PROMTOOL ?? 'promtool', ['--version'], { encoding: 'utf8' })
const havePromtool = probe.error === undefined && probe.status === 0
const inCi = process.env.CI !== undefined
/** Skipped (with the reason) only outside CI; in CI a missing promtool is a failure. */
const promtoolSkip: string | false = havePromtool || inCi ? false : 'promtool not installed (apt-get install prometheus)'

function requirePromtool (t: Test): boolean {
  if (havePromtool) return true
  t.fail(`promtool is not installed but CI=${process.env.CI ?? ''}: CI must install it (apt-get install prometheus)`)
  return false
}

t.test('promtool check rules accepts the alert rules', { skip: promtoolSkip }, async (t) => {
  if (!requirePromtool(t)) return
  const r = promtool(['check', 'rules', ALERTS])
  t.equal(r.status, 0, `promtool check rules ${ALERTS}:\n${r.output}`)
  t.match(r.output, /SUCCESS: \d+ rules found/)
})

t.test('promtool test rules: every alert unit test passes', { skip: promtoolSkip }, async (t) => {
  if (!requirePromtool(t)) return
  const r = promtool(['test', 'rules', ALERT_TESTS])
  t.equal(r.status, 0, `promtool test rules ${ALERT_TESTS}:\n${r.output}`)
  t.match(r.output, /SUCCESS/)
})

t.test('the PrometheusRule the chart renders passes promtool and the alert unit tests', { skip: promtoolSkip }, async (t) => {
  if (!requirePromtool(t)) return
  const { HELMS, get, render, scenario } = await import('./fixtures/helm.ts')
  const docs = await render(HELMS[1], { values: [scenario('production-values.yaml')] })
  const dir = mkdtempSync(join(tmpdir(), 'pai-chart-rules-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const rendered = join(dir, 'rendered-alerts.yaml')
  writeFileSync(rendered, stringify(get(docs, 'PrometheusRule').spec))
  const check = promtool(['check', 'rules', rendered])
  t.equal(check.status, 0, check.output)
  t.match(check.output, new RegExp(`SUCCESS: ${EXPECTED_ALERTS.length} rules found`))
  // The same unit tests, pointed at what Helm rendered: proves .Files.Get left Prometheus's templates intact.
  const tests = parse(read(ALERT_TESTS)) as { rule_files: string[] }
  tests.rule_files = [rendered]
  writeFileSync(join(dir, 'alerts.test.yaml'), stringify(tests))
  const unit = promtool(['test', 'rules', join(dir, 'alerts.test.yaml')])
  t.equal(unit.status, 0, unit.output)
  t.match(unit.output, /SUCCESS/)
})

t.test('promtool parses every dashboard query', { skip: promtoolSkip }, async (t) => {
  if (!requirePromtool(t)) return
  // Grafana variables are not PromQL: substitute values of the right shape, then let promtool parse
  // each query as a recording rule.
  const rules = dashboardQueries().map((q, i) => ({
    record: `dashboard:query_${i}`,
    expr: q.expr
      .replaceAll('$__rate_interval', '5m')
      .replaceAll('$__interval', '1m')
      .replaceAll('$__range', '1h')
      .replace(/\$\{?(namespace|pod)\}?/g, '.*')
  }))
  t.ok(rules.length > 0)
  const dir = mkdtempSync(join(tmpdir(), 'pai-dashboard-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, 'dashboard-queries.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }))
  const r = promtool(['check', 'rules', 'dashboard-queries.yaml'], dir)
  t.equal(r.status, 0, `promtool check rules on the dashboard's queries:\n${r.output}\n${rules.map((q) => `${q.record}: ${q.expr}`).join('\n')}`)
})

// ------------------------------------------------------------------------------------------- the rules

t.test('the rule file has each expected alert, with for, severity, summary, description and a runbook anchor', async (t) => {
  t.same(alerts.map((a) => a.alert).sort(), [...EXPECTED_ALERTS].sort())
  for (const a of alerts) {
    const name = a.alert as string
    t.match(a.for, /^\d+[smh]$/, `${name} has for:`)
    t.ok(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${name} has a severity label`)
    t.ok((a.annotations?.summary ?? '').length > 10, `${name} has a summary`)
    t.ok((a.annotations?.description ?? '').length > 40, `${name} has a description`)
    const url = a.annotations?.runbook_url ?? ''
    t.ok(url.startsWith(RUNBOOK), `${name} runbook_url points at docs/METRICS.md: ${url}`)
    // GitHub's heading anchor: lower-case, punctuation dropped, spaces as dashes.
    const anchor = url.slice(RUNBOOK.length)
    t.equal(anchor, name.toLowerCase(), `${name} links its own section`)
    t.match(doc, new RegExp(`^### ${name}$`, 'm'), `docs/METRICS.md has a "### ${name}" section`)
  }
  t.match(read(ALERTS), /explain/, 'the CORS alert tells the operator to run explain')
})

t.test('every alert has a unit test where it fires and one where it stays quiet', async (t) => {
  const tests = parse(read(ALERT_TESTS)) as RuleTestFile
  t.same(tests.rule_files, ['../../charts/pai-cors-sidecar/files/alerts.yaml'], 'rule_files is relative to the test file')
  const cases = tests.tests.flatMap((g) => g.alert_rule_test ?? [])
  for (const name of EXPECTED_ALERTS) {
    const mine = cases.filter((c) => c.alertname === name)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${name} fires in some test`)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${name} stays quiet in some test`)
  }
})

// -------------------------------------------------------------------------------------- metric names

/** Names declared in sidecar/metrics.ts: `${PREFIX}requests_total` → pai_sidecar_requests_total. */
function declaredMetrics (): string[] {
  const names = [...read(METRICS_SOURCE).matchAll(/\$\{PREFIX\}([a-z0-9_]+)/g)].map((m) => `pai_sidecar_${m[1] as string}`)
  return [...new Set(names)].sort()
}

/** prom-client's default metrics as the sidecar registers them (same prefix), with their types. */
function defaultMetrics (): Map<string, string> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'pai_sidecar_' })
  const metrics = registry.getMetricsAsArray() as unknown as { name: string; type: string }[]
  return new Map(metrics.map((m) => [m.name, String(m.type)]))
}

/** Metric name → type from the first two cells of every table row in docs/METRICS.md. */
function documentedMetrics (): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of doc.split('\n')) {
    if (!line.startsWith('|')) continue
    const cells = line.split('|').map((c) => c.trim())
    const first = cells[1] ?? ''
    const type = cells[2] ?? ''
    for (const m of first.matchAll(/`(pai_sidecar_[a-z0-9_]+)`/g)) out.set(m[1] as string, type)
  }
  return out
}

/** The series names a metric of this type exposes to PromQL. */
function seriesNames (name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`]
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`]
  return [name]
}

function usedNames (expr: string): string[] {
  return [...expr.matchAll(/(?<![A-Za-z0-9_:])pai_sidecar_[A-Za-z0-9_:]*/g)].map((m) => m[0])
}

function allPanels (panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])])
}

function dashboardQueries (): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = []
  for (const p of allPanels(dashboard.panels)) {
    for (const target of p.targets ?? []) {
      if (target.expr !== undefined) out.push({ where: `panel "${p.title}" ${target.refId ?? ''}`, expr: target.expr })
    }
  }
  return out
}

const documented = documentedMetrics()
const defaults = defaultMetrics()

t.test('docs/METRICS.md documents every metric declared in sidecar/metrics.ts', async (t) => {
  const declared = declaredMetrics()
  t.ok(declared.length >= 15, `found the declared metrics (${declared.length})`)
  for (const name of declared) t.ok(documented.has(name), `${name} is in a table of docs/METRICS.md`)
  for (const name of QUEUE_METRICS) t.ok(documented.has(name), `${name} (admission control) is documented`)
  for (const name of defaults.keys()) t.ok(documented.has(name), `default metric ${name} is documented`)
  for (const [name, type] of documented) {
    t.ok(declared.includes(name) || defaults.has(name) || QUEUE_METRICS.includes(name), `documented ${name} exists`)
    t.ok(['counter', 'gauge', 'histogram', 'summary'].includes(type), `${name} has a type in docs/METRICS.md (${type})`)
    const real = defaults.get(name)
    if (real !== undefined) t.equal(type, real, `${name} is documented with prom-client's type`)
  }
})

t.test('alert and dashboard queries use only documented or default pai_sidecar_* metrics', async (t) => {
  const allowed = new Set<string>()
  for (const [name, type] of documented) for (const s of seriesNames(name, type)) allowed.add(s)
  for (const [name, type] of defaults) for (const s of seriesNames(name, type)) allowed.add(s)

  const queries = [
    ...alerts.map((a) => ({ where: `alert ${a.alert as string}`, expr: a.expr })),
    ...dashboardQueries(),
    ...dashboard.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => ({ where: `variable ${v.name}`, expr: v.definition ?? JSON.stringify(v.query) }))
  ]
  t.ok(queries.length > 30, `found the queries (${queries.length})`)
  for (const q of queries) {
    const names = usedNames(q.expr)
    t.ok(names.length > 0, `${q.where} queries a pai_sidecar_ metric: ${q.expr}`)
    for (const name of names) t.ok(allowed.has(name), `${q.where}: ${name} is documented or a default metric`)
    t.notMatch(q.expr, /__name__/, `${q.where} names its metrics literally`)
  }
})

// ------------------------------------------------------------------------------------------ dashboard

t.test('the dashboard has a Prometheus datasource variable, namespace and pod variables, and uses them', async (t) => {
  t.ok(dashboard.schemaVersion >= 38, `schemaVersion ${dashboard.schemaVersion} >= 38`)
  t.ok(dashboard.uid.length > 0 && dashboard.title.length > 0)
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]))
  t.match(vars.get('datasource'), { type: 'datasource', query: 'prometheus' })
  t.match(vars.get('namespace'), { type: 'query' })
  t.match(vars.get('pod'), { type: 'query' })

  const panels = allPanels(dashboard.panels)
  const ids = panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  for (const p of panels.filter((p) => p.type !== 'row')) {
    t.equal(p.datasource?.uid, DATASOURCE, `panel "${p.title}" uses the datasource variable`)
    t.ok((p.targets ?? []).length > 0, `panel "${p.title}" has queries`)
    for (const target of p.targets ?? []) {
      t.equal(target.datasource?.uid, DATASOURCE, `panel "${p.title}" ${target.refId ?? ''} uses the datasource variable`)
      t.match(target.expr, /namespace=~"\$namespace", pod=~"\$pod"/, `panel "${p.title}" ${target.refId ?? ''} filters by the namespace and pod variables`)
    }
  }
})
