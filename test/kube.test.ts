// Kubernetes mode: the ConfigMap read and followed through the API (kube/reflector.ts), and Events on the pod
// (kube/events.ts), over one client (kube/client.ts), against a fake
// API server that enforces what the real one does (RBAC needing the field selector, 410 for expired
// resourceVersions, watch timeouts, Event validation). Loopback only; every wait is bounded.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { connectKube, type KubeClientOptions } from '../sidecar/kube/client.ts'
import { EventRecorder, truncateUtf8, type EventPod, type EventReason, type EventType } from '../sidecar/kube/events.ts'
import { ConfigMapReflector, PROBLEM_AFTER_FAILURES, type ReflectorOptions } from '../sidecar/kube/reflector.ts'
import { startFakeKube, type FakeKube, type RecordedRequest } from './fixtures/fake-kube.ts'

// The content carries a customer's origin: it must never reach a log line or a problem message.
const MARKER = 'https://customer-secret.example'
const yaml = (n: number | string): string => `cors:\n  allowedOrigins: [${MARKER}]\n  maxAge: ${n}\n`
const KEY = 'config.yaml'

interface KubeSourceOptions extends ReflectorOptions, KubeClientOptions {
  onText: (text: string) => void
  onProblem: (message: string) => void
  pod?: EventPod
}

/** The reflector, opened and started, and an Event recorder on the same client: what Kubernetes mode runs. */
interface KubeSource {
  initialText: string
  reflector: ConfigMapReflector
  recordEvent: (type: EventType, reason: EventReason, note: string) => Promise<void>
  stop: () => Promise<void>
}

async function startKubeSource (opts: KubeSourceOptions): Promise<KubeSource> {
  const client = await connectKube({ kubeConfig: opts.kubeConfig, requestTimeoutMs: opts.requestTimeoutMs })
  const reflector = new ConfigMapReflector(client, opts)
  const initialText = await reflector.open()
  reflector.start(opts.onText, opts.onProblem)
  const events = new EventRecorder(client, opts.pod, opts.log)
  return {
    initialText,
    reflector,
    recordEvent: async (type, reason, note) => { await events.record(type, reason, note) },
    stop: async () => { await Promise.all([reflector.stop(), events.stop()]) }
  }
}

interface LogLine { level: 'info' | 'warn' | 'debug'; o: Record<string, unknown>; msg: string }
interface Harness {
  fake: FakeKube
  source: KubeSource
  texts: Array<{ text: string; at: number }>
  problems: string[]
  logs: LogLine[]
  watches: () => RecordedRequest[]
  lists: () => RecordedRequest[]
}

const allFakes: FakeKube[] = []
const allLogs: LogLine[] = []
const allProblems: string[] = []

function recorder (): { log: KubeSourceOptions['log']; logs: LogLine[] } {
  const logs: LogLine[] = []
  const add = (level: LogLine['level']) => (o: object, msg: string): void => {
    const line = { level, o: o as Record<string, unknown>, msg }
    logs.push(line)
    allLogs.push(line)
  }
  return { logs, log: { info: add('info'), warn: add('warn'), debug: add('debug') } }
}

async function fakeKube (t: Test): Promise<FakeKube> {
  const fake = await startFakeKube()
  allFakes.push(fake)
  t.teardown(() => fake.close())
  return fake
}

/** Poll until `check` holds; fail after `ms`. */
async function until (check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function harness (t: Test, extra: Partial<KubeSourceOptions> = {}, data: Record<string, string> | null = { [KEY]: yaml(1) }): Promise<Harness> {
  const fake = await fakeKube(t)
  if (data !== null) fake.setConfigMap(data)
  const texts: Harness['texts'] = []
  const problems: string[] = []
  const { log, logs } = recorder()
  const source = await startKubeSource({
    namespace: fake.namespace,
    name: fake.name,
    key: KEY,
    onText: (text) => { texts.push({ text, at: Date.now() }) },
    onProblem: (message) => { problems.push(message); allProblems.push(message) },
    log,
    kubeConfig: fake.kubeConfig(),
    backoff: { initialMs: 20, maxMs: 200 },
    requestTimeoutMs: 1000,
    watchTimeoutSeconds: 60,
    ...extra
  })
  t.teardown(() => source.stop())
  const h: Harness = {
    fake,
    source,
    texts,
    problems,
    logs,
    watches: () => fake.requests.filter((r) => r.kind === 'watch'),
    lists: () => fake.requests.filter((r) => r.kind === 'list')
  }
  await until(() => fake.openWatches === 1, 'the first watch')
  return h
}

/** Wait for the next watch request after `count` watch requests, and for it to be open. */
async function nextWatch (h: Harness, count: number): Promise<RecordedRequest> {
  await until(() => h.watches().length > count && h.fake.openWatches === 1, `watch request #${count + 1}`)
  return h.watches()[count] as RecordedRequest
}

/** A change to the key, awaited through onText: a barrier proving everything before it was handled. */
async function changeAndWait (h: Harness, text: string): Promise<number> {
  const before = h.texts.length
  const at = Date.now()
  h.fake.setConfigMap({ [KEY]: text })
  await until(() => h.texts.length > before, 'onText after a change', 2000)
  return (h.texts[h.texts.length - 1] as { at: number }).at - at
}

t.test('initial load: one list with the field selector, then a watch from its resourceVersion', async (t) => {
  const fake = await fakeKube(t)
  const rv = fake.setConfigMap({ [KEY]: yaml(1), 'other.txt': 'x' })
  fake.setConfigMap({ unrelated: 'y' }, 'another-configmap')
  const { log, logs } = recorder()
  // Defaults for backoff and timeouts: nothing here waits on them.
  const source = await startKubeSource({ namespace: fake.namespace, name: fake.name, key: KEY, onText: () => t.fail('no change yet'), onProblem: (m) => t.fail(m), log, kubeConfig: fake.kubeConfig() })
  t.teardown(() => source.stop())
  t.equal(source.initialText, yaml(1))
  await until(() => fake.openWatches === 1, 'the watch')
  const [list, watch] = fake.requests
  t.match(list, { kind: 'list', path: '/api/v1/namespaces/sidecar/configmaps', query: { fieldSelector: 'metadata.name=cors-config' } })
  t.notOk('watch' in (list as RecordedRequest).query)
  // The list's resourceVersion is the global one (the other ConfigMap's change is newer than ours).
  t.not(String(fake.resourceVersion), rv)
  t.match(watch, {
    kind: 'watch',
    path: '/api/v1/namespaces/sidecar/configmaps',
    query: { watch: 'true', fieldSelector: 'metadata.name=cors-config', resourceVersion: String(fake.resourceVersion), allowWatchBookmarks: 'true' }
  })
  // client-go's choice: a server-side timeout between 5 and 10 minutes.
  const timeout = Number((watch as RecordedRequest).query.timeoutSeconds)
  t.ok(timeout >= 300 && timeout <= 600, `timeoutSeconds ${timeout}`)
  t.match(logs[0], { level: 'info', o: { resourceVersion: String(fake.resourceVersion), bytes: Buffer.byteLength(yaml(1)) } })
})

t.test('changes between open() and start() are delivered by the first watch, from open()\'s resourceVersion', async (t) => {
  const fake = await fakeKube(t)
  fake.setConfigMap({ [KEY]: yaml(1) })
  const { log } = recorder()
  const client = await connectKube({ kubeConfig: fake.kubeConfig() })
  const reflector = new ConfigMapReflector(client, { namespace: fake.namespace, name: fake.name, key: KEY, log })
  t.teardown(() => reflector.stop())
  t.equal(await reflector.open(), yaml(1))
  const listed = String(fake.resourceVersion)
  fake.setConfigMap({ [KEY]: yaml(2) })
  await pause(30)
  t.equal(fake.requests.filter((r) => r.kind === 'watch').length, 0, 'nothing is watched before start()')
  const texts: string[] = []
  reflector.start((text) => { texts.push(text) }, (m) => t.fail(m))
  await until(() => texts.length === 1, 'the change made before start()')
  t.same(texts, [yaml(2)])
  t.equal(fake.requests.find((r) => r.kind === 'watch')?.query.resourceVersion, listed)
})

t.test('a change to the key reaches onText within a bounded time', async (t) => {
  const h = await harness(t)
  const latencies: number[] = []
  for (let i = 2; i <= 21; i++) latencies.push(await changeAndWait(h, yaml(i)))
  t.same(h.texts.map((x) => x.text), Array.from({ length: 20 }, (_, i) => yaml(i + 2)))
  latencies.sort((a, b) => a - b)
  const max = latencies[latencies.length - 1] as number
  t.comment(`change → onText over 20 changes: median ${latencies[10] as number} ms, max ${max} ms`)
  t.ok(max < 2000, `max latency ${max} ms < 2 s`)
  t.same(h.problems, [])
  t.equal(h.watches().length, 1, 'one watch carried every change')
})

t.test('changes that leave the key alone do not call onText', async (t) => {
  const h = await harness(t)
  h.fake.setConfigMap({ [KEY]: yaml(1), added: 'another key' })      // another key
  h.fake.setConfigMap({ [KEY]: yaml(1), added: 'changed again' })
  h.fake.setConfigMap({ [KEY]: yaml(1) })                             // same content, new resourceVersion
  h.fake.setConfigMap({ [KEY]: 'unrelated' }, 'another-configmap')    // filtered out by the field selector
  await changeAndWait(h, yaml(2))
  t.same(h.texts.map((x) => x.text), [yaml(2)], 'only the real change')
  t.equal(h.logs.filter((l) => l.level === 'debug' && l.msg.includes('but not its key')).length, 3)
  t.same(h.problems, [])
})

t.test('DELETED and a missing key call onProblem once, and nothing else', async (t) => {
  const h = await harness(t)
  h.fake.deleteConfigMap()
  await until(() => h.problems.length === 1, 'onProblem after DELETED')
  t.match(h.problems[0], /^ConfigMap sidecar\/cors-config was deleted; keeping the last good configuration$/)
  await pause(50)
  t.equal(h.problems.length, 1)
  t.same(h.texts, [], 'no onText')

  // Back with the same content: nothing to reload.
  h.fake.setConfigMap({ [KEY]: yaml(1) })
  await changeAndWait(h, yaml(2))
  t.same(h.texts.map((x) => x.text), [yaml(2)])

  // The key goes away (twice): one problem; it comes back with new content: onText.
  h.fake.setConfigMap({ 'config.yml': yaml(2) })
  h.fake.setConfigMap(undefined)
  await until(() => h.problems.length === 2, 'onProblem for the missing key')
  t.match(h.problems[1], /no longer has the key "config\.yaml"; keeping the last good configuration/)
  await changeAndWait(h, yaml(3))
  t.equal(h.problems.length, 2)
  t.same(h.texts.map((x) => x.text), [yaml(2), yaml(3)])
  t.equal(h.watches().length, 1)
})

t.test('a watch that ends resumes from the last resourceVersion (events and bookmarks)', async (t) => {
  const h = await harness(t)
  await changeAndWait(h, yaml(2))
  const afterEvent = h.fake.resourceVersion
  // Other ConfigMaps move the global resourceVersion on; the server ends the watch as at its timeout.
  h.fake.setConfigMap({ a: '1' }, 'another-configmap')
  h.fake.endWatches()
  const second = await nextWatch(h, 1)
  t.equal(second.query.resourceVersion, String(afterEvent), 'resumed from the last event seen')
  t.equal(second.query.fieldSelector, 'metadata.name=cors-config')

  // A bookmark moves our resourceVersion on without an event about our ConfigMap.
  h.fake.setConfigMap({ a: '2' }, 'another-configmap')
  h.fake.bookmark()
  await until(() => h.logs.some((l) => l.msg === 'bookmark'), 'the bookmark')
  const bookmarked = h.fake.resourceVersion
  h.fake.endWatches()
  const third = await nextWatch(h, 2)
  t.equal(third.query.resourceVersion, String(bookmarked), 'resumed from the bookmark')
  t.equal(h.lists().length, 1, 'no relist')
  await pause(30)
  t.same(h.texts.map((x) => x.text), [yaml(2)], 'old content is not delivered again')
})

t.test('the server ending the watch at timeoutSeconds (with a bookmark) is resumed', async (t) => {
  const h = await harness(t, { watchTimeoutSeconds: 1 })
  h.fake.setConfigMap({ a: '1' }, 'another-configmap')
  const t0 = Date.now()
  const second = await nextWatch(h, 1)
  t.ok(Date.now() - t0 >= 900, 'after about a second')
  t.equal(second.query.timeoutSeconds, '1')
  t.equal(second.query.resourceVersion, String(h.fake.resourceVersion), 'from the bookmark sent before the end')
  t.same(h.texts, [])
  t.same(h.problems, [])
})

t.test('410 Gone: relist, deliver what changed meanwhile, watch from the new list', async (t) => {
  const h = await harness(t)
  // While no watch is open: a change, then history compacted past our resourceVersion.
  h.fake.endWatches()
  h.fake.setConfigMap({ [KEY]: yaml(2) })
  h.fake.compact()
  await until(() => h.texts.length === 1, 'onText after the relist')
  t.equal(h.texts[0]?.text, yaml(2))
  const listRv = String(h.fake.resourceVersion)
  const watch = await nextWatch(h, 2)
  t.equal(h.lists().length, 2, 'one relist')
  t.equal(h.lists()[1]?.query.fieldSelector, 'metadata.name=cors-config')
  t.equal(watch.query.resourceVersion, listRv)
  t.ok(h.logs.some((l) => l.msg.includes('410 Gone')))

  // Gone again, nothing of ours changed: no onText.
  h.fake.endWatches()
  h.fake.setConfigMap({ a: '1' }, 'another-configmap')
  h.fake.compact()
  await nextWatch(h, 4)
  t.equal(h.lists().length, 3)
  t.equal(h.texts.length, 1)

  // An HTTP 410 answer to the watch request itself (rather than an ERROR event) relists too.
  h.fake.failNext(1, 410, 'watch')
  h.fake.endWatches()
  await nextWatch(h, 6)
  t.equal(h.lists().length, 4)

  // The relist fails once, then works; meanwhile the ConfigMap was deleted.
  h.fake.failNext(1, 500, 'list')
  h.fake.endWatches()
  h.fake.deleteConfigMap()
  h.fake.compact()
  await until(() => h.problems.length === 1, 'onProblem after the relist')
  t.match(h.problems[0], /was deleted/)
  t.equal(h.lists().length, 6)
  t.ok(h.logs.some((l) => l.level === 'warn' && l.msg.startsWith('relisting the ConfigMap failed')))
  t.equal(h.texts.length, 1)
})

t.test('transient failures back off exponentially with jitter, then recover', async (t) => {
  const h = await harness(t, { backoff: { initialMs: 20, maxMs: 200 } })
  // (Each watch first lives longer than initialMs: one the server closes sooner counts as a failure too.)
  await pause(40)
  // Two 500s: only logged.
  h.fake.failNext(2, 500, 'watch')
  h.fake.endWatches()
  await nextWatch(h, 3)
  t.same(h.problems, [])
  await changeAndWait(h, yaml(2))

  // Connection resets, enough for the caller to hear about it once.
  const start = h.watches().length
  await pause(40)
  h.fake.failNext(4, 'reset', 'watch')
  h.fake.endWatches()
  await nextWatch(h, start + 4)
  t.equal(h.problems.length, 1, 'one problem for the whole streak')
  t.match(h.problems[0], new RegExp(`keeps failing \\(${PROBLEM_AFTER_FAILURES} attempts; last: .*socket hang up`))
  await changeAndWait(h, yaml(3))
  t.ok(h.logs.some((l) => l.level === 'info' && l.msg.includes('works again')))
  // The gaps between attempts follow the backoff: each at least half of 20, 40, 80, 160 ms.
  const at = h.watches().slice(start).map((r) => r.at)
  const gaps = at.slice(1).map((x, i) => x - (at[i] as number))
  t.comment(`gaps between retries: ${gaps.join(', ')} ms`)
  gaps.forEach((gap, i) => { t.ok(gap >= 10 * 2 ** i - 2, `gap ${i + 1}: ${gap} ms ≥ ${10 * 2 ** i} ms`) })
  t.ok((gaps[3] as number) < 400, 'capped by maxMs (200 ms) and the connect time')

  // An ERROR event other than 410, and a 403 answer (RBAC changed under us): retried the same way.
  await pause(40)
  h.fake.watchError(500, 'InternalError')
  await nextWatch(h, start + 5)
  await pause(40)
  h.fake.failNext(1, 403, 'watch')
  h.fake.endWatches()
  await nextWatch(h, start + 7)
  t.ok(h.logs.some((l) => l.level === 'warn' && String(l.o.err).startsWith('watch error 500 InternalError')))
  t.ok(h.logs.some((l) => l.level === 'warn' && l.o.err === 'HTTP 403 Forbidden'))
  await changeAndWait(h, yaml(4))
  t.equal(h.problems.length, 1)
})

t.test('a watch the server closes at once is retried after a backoff, not in a loop', async (t) => {
  const h = await harness(t, { backoff: { initialMs: 400, maxMs: 400 } })
  h.fake.endWatches() // the watch lived far less than initialMs
  const second = await nextWatch(h, 1)
  const first = h.watches()[0] as RecordedRequest
  t.ok(second.at - first.at >= 200, `waited ${second.at - first.at} ms`)
  t.ok(h.logs.some((l) => l.level === 'warn' && l.o.err === 'the server closed the watch at once'))
})

t.test('stalls: unanswered watch and list requests and a silent watch are cut and retried', async (t) => {
  const h = await harness(t, { requestTimeoutMs: 300, watchTimeoutSeconds: 1 })
  // A watch request that gets no response headers.
  h.fake.failNext(1, 'stall', 'watch')
  h.fake.endWatches()
  await nextWatch(h, 2)
  t.equal(h.watches()[1]?.answer, 'stall')
  t.ok(h.logs.some((l) => l.level === 'warn' && String(l.o.err).includes('gave no answer')))

  // A watch whose server neither sends anything nor honours timeoutSeconds (a connection that died silently).
  h.fake.honourTimeouts(false)
  h.fake.endWatches()
  const silent = await nextWatch(h, 3)
  const next = await nextWatch(h, 4)
  const lived = next.at - silent.at
  t.ok(lived >= 1250 && lived < 2500, `cut after timeoutSeconds + requestTimeoutMs: ${lived} ms`)
  h.fake.honourTimeouts(true)

  // A relist that gets no answer.
  h.fake.failNext(1, 'stall', 'list')
  h.fake.endWatches()
  h.fake.setConfigMap({ [KEY]: yaml(2) })
  h.fake.compact()
  await until(() => h.texts.length === 1, 'onText after the stalled relist', 4000)
  t.ok(h.logs.some((l) => l.level === 'warn' && l.o.err === 'no answer from the Kubernetes API within 300 ms'))
})

t.test('exceptions from onText and onProblem are logged and the watch goes on', async (t) => {
  let calls = 0
  let problems = 0
  const h = await harness(t, {
    onText: () => {
      calls++
      if (calls === 1) throw new Error('handler bug')
      if (calls === 2) throw 'not an Error' // eslint-disable-line no-throw-literal
    },
    onProblem: () => { problems++; throw new Error('problem handler bug') }
  })
  for (let i = 2; i <= 4; i++) h.fake.setConfigMap({ [KEY]: yaml(i) })
  await until(() => calls === 3, 'three deliveries')
  t.same(h.logs.filter((l) => l.msg === 'the onText handler threw').map((l) => l.o.err), ['handler bug', 'not an Error'])
  // From a watch event, and from the retry loop (where a throw would have ended the loop).
  h.fake.deleteConfigMap()
  await pause(40)
  h.fake.failNext(PROBLEM_AFTER_FAILURES, 500, 'watch')
  h.fake.endWatches()
  await nextWatch(h, 1 + PROBLEM_AFTER_FAILURES) // the first watch, the failures, the one that works
  t.equal(problems, 2)
  t.equal(h.logs.filter((l) => l.msg === 'the onProblem handler threw').length, 2)
  h.fake.setConfigMap({ [KEY]: yaml(5) })
  await until(() => calls === 4, 'still delivering')
})

t.test('startKubeSource rejects clearly', async (t) => {
  const fake = await fakeKube(t)
  const { log } = recorder()
  const base = { namespace: fake.namespace, name: fake.name, key: KEY, onText: () => {}, onProblem: () => {}, log, backoff: { initialMs: 10, maxMs: 40 } }
  const start = async (extra: Partial<KubeSourceOptions> = {}): Promise<KubeSource> =>
    await startKubeSource({ ...base, kubeConfig: fake.kubeConfig(), ...extra })

  await t.rejects(start(), /^ConfigMap sidecar\/cors-config does not exist \(the list with fieldSelector=metadata\.name=cors-config is empty\)$/, 'no ConfigMap')
  fake.setConfigMap(undefined)
  await t.rejects(start(), /^ConfigMap sidecar\/cors-config has no key "config\.yaml" \(its keys: none\)$/, 'no data')
  fake.setConfigMap({ 'config.yml': 'x', other: 'y' })
  await t.rejects(start(), /has no key "config\.yaml" \(its keys: config\.yml, other\)$/, 'other keys')
  fake.setConfigMap({ [KEY]: yaml(1) })

  // RBAC allows one name in one namespace (with the field selector): anything else is 403.
  await t.rejects(start({ name: 'someone-elses' }),
    /cannot read ConfigMap sidecar\/someone-elses from the Kubernetes API \(HTTP 403: configmaps is forbidden: .*cannot list resource "configmaps".*\); the pod's service account needs get, list and watch on configmaps with resourceNames: \[someone-elses\] in namespace sidecar$/)
  await t.rejects(start({ namespace: 'kube-system' }), /HTTP 403: .*in the namespace "kube-system"/)
  await t.rejects(start({ kubeConfig: fake.kubeConfig('wrong-token') }), /\(HTTP 401\); the API refused the service account token$/)
  fake.failNext(1, 404, 'list', '{"kind":"Status"}')
  await t.rejects(start(), /\(HTTP 404\)$/, 'a Status without a message')

  // Transient failures are retried twice.
  for (const how of [500, 429, 'reset'] as const) {
    fake.failNext(2, how, 'list')
    const s = await start()
    t.equal(s.initialText, yaml(1), `recovered from ${how}`)
    await s.stop()
  }
  fake.failNext(3, 503, 'list', 'upstream connect error')
  await t.rejects(start(), /\(HTTP 503\)$/, 'a non-JSON body')
  t.equal(fake.requests.filter((r) => r.answer === 503).length, 3, 'three attempts')

  fake.failNext(1, 'stall', 'list')
  fake.failNext(1, 'stall', 'list')
  fake.failNext(1, 'stall', 'list')
  await t.rejects(start({ requestTimeoutMs: 100 }), /\(no answer from the Kubernetes API within 100 ms\)$/)
})

t.test('without a kubeConfig: the in-cluster service account, or a clear error outside a pod', async (t) => {
  const fake = await fakeKube(t)
  fake.setConfigMap({ [KEY]: yaml(1) })
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT }
  t.teardown(() => {
    for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  const { log } = recorder()
  const base = { namespace: fake.namespace, name: fake.name, key: KEY, onText: () => {}, onProblem: () => {}, log, backoff: { initialMs: 10, maxMs: 40 } }
  delete process.env.KUBERNETES_SERVICE_HOST
  delete process.env.KUBERNETES_SERVICE_PORT
  await t.rejects(startKubeSource(base), /^Kubernetes mode must run in a pod: KUBERNETES_SERVICE_HOST\/PORT are not set$/)
  // In a pod, loadFromCluster() reads the service account's files (absent here): the error says which.
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1'
  process.env.KUBERNETES_SERVICE_PORT = new URL(fake.url).port
  await t.rejects(startKubeSource(base), /^cannot read ConfigMap sidecar\/cors-config from the Kubernetes API \(.*\/var\/run\/secrets\/kubernetes\.io\/serviceaccount\//)
})

t.test('recordEvent posts a valid events.k8s.io/v1 Event about the pod', async (t) => {
  const pod = { name: 'pai-7d9f-x2', namespace: 'sidecar', uid: '6f1c-uid' }
  const h = await harness(t, { pod })
  await h.source.recordEvent('Normal', 'ConfigReloaded', 'configuration 1a2b3c accepted')
  await h.source.recordEvent('Warning', 'ConfigRejected', 'é'.repeat(700)) // 1400 bytes
  t.equal(h.fake.events.length, 2)
  const [ok, rejected] = h.fake.events as [Record<string, unknown>, Record<string, unknown>]
  t.match(ok, {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { generateName: 'pai-7d9f-x2.', name: /^pai-7d9f-x2\.[0-9a-f]{5}$/, namespace: 'sidecar' },
    eventTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
    action: 'Reload',
    reason: 'ConfigReloaded',
    note: 'configuration 1a2b3c accepted',
    type: 'Normal',
    reportingController: 'pai-cors-sidecar',
    reportingInstance: 'pai-7d9f-x2',
    regarding: { kind: 'Pod', apiVersion: 'v1', name: 'pai-7d9f-x2', namespace: 'sidecar', uid: '6f1c-uid' }
  })
  t.ok(Math.abs(Date.parse(ok.eventTime as string) - Date.now()) < 5000, 'eventTime is now')
  t.match(rejected, { type: 'Warning', reason: 'ConfigRejected' })
  const note = rejected.note as string
  t.ok(Buffer.byteLength(note) <= 1024, `note cut to ${Buffer.byteLength(note)} bytes`)
  t.ok(note.endsWith('é…') && !note.includes('\uFFFD'), 'cut between characters')
  t.equal(h.fake.requests.filter((r) => r.kind === 'event').length, 2)

  // Pod names may be longer than the 128 characters the API allows for reportingInstance.
  const long = await harness(t, { pod: { name: `p${'x'.repeat(199)}`, namespace: 'sidecar' } })
  await long.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  t.match(long.fake.events[0], { reportingInstance: `p${'x'.repeat(127)}`, regarding: { name: `p${'x'.repeat(199)}` } })
})

t.test('recordEvent never throws: refusals, stalls, no pod, after stop', async (t) => {
  const h = await harness(t, { pod: { name: 'pai-0', namespace: 'sidecar' }, requestTimeoutMs: 300 })
  h.fake.failNext(1, 403, 'event')
  await h.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  h.fake.failNext(1, 'stall', 'event')
  const t0 = Date.now()
  await h.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  t.ok(Date.now() - t0 < 1500, 'bounded by requestTimeoutMs')
  const warnings = h.logs.filter((l) => l.msg === 'could not record a Kubernetes Event').map((l) => l.o.err)
  t.same(warnings, ['HTTP 403: injected failure 403', 'no answer from the Kubernetes API within 300 ms'])
  t.same(h.fake.events, [])
  // The real API's own refusals: an Event in another namespace (RBAC), an invalid one (422).
  const other = await harness(t, { pod: { name: 'pai-0', namespace: 'elsewhere' } })
  await other.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  t.match(other.logs.find((l) => l.msg === 'could not record a Kubernetes Event')?.o.err, /^HTTP 403: events\.events\.k8s\.io is forbidden/)
  h.fake.failNext(1, 422, 'event')
  await h.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  t.match(h.logs.filter((l) => l.msg === 'could not record a Kubernetes Event').pop()?.o.err, /^HTTP 422: /)

  const none = await harness(t) // no pod: no Events at all
  await none.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  t.equal(none.fake.requests.filter((r) => r.kind === 'event').length, 0)

  // Stopping while an Event is in flight ends it; after stop, recordEvent does nothing.
  h.fake.failNext(1, 'stall', 'event')
  const pending = h.source.recordEvent('Normal', 'ConfigReloaded', 'x')
  await until(() => h.fake.requests.filter((r) => r.kind === 'event' && r.answer === 'stall').length === 2, 'the stalled Event')
  const t1 = Date.now()
  await h.source.stop()
  await pending
  t.ok(Date.now() - t1 < 200, `stop() was prompt: ${Date.now() - t1} ms`)
  const before = h.fake.requests.length
  await h.source.recordEvent('Warning', 'ConfigRejected', 'x')
  t.equal(h.fake.requests.length, before)
})

t.test('the fake refuses Events the real API refuses', async (t) => {
  // The sidecar's own Event shape is checked above; this checks the fake's checks are real ones.
  const fake = await fakeKube(t)
  const post = async (body: unknown): Promise<{ status: number; message: string }> => {
    const res = await fetch(`${fake.url}/apis/events.k8s.io/v1/namespaces/sidecar/events`, {
      method: 'POST', headers: { authorization: 'Bearer test', 'content-type': 'application/json' }, body: JSON.stringify(body)
    })
    return { status: res.status, message: ((await res.json()) as { message: string }).message }
  }
  const valid = {
    metadata: { generateName: 'p.' },
    eventTime: '2025-01-01T00:00:00.000000Z',
    action: 'Reload',
    reason: 'ConfigReloaded',
    type: 'Normal',
    reportingController: 'pai-cors-sidecar',
    reportingInstance: 'p',
    regarding: { kind: 'Pod', name: 'p', namespace: 'sidecar' }
  }
  t.equal((await post(valid)).status, 201)
  t.match(await post({ ...valid, eventTime: '2025-01-01T00:00:00.000Z' }), { status: 400, message: /cannot parse/ }, 'a plain Date has 3 digits')
  const invalid = await post({ metadata: {}, type: 'Info', reportingController: 'Not/A/Name', note: 'x'.repeat(1025), regarding: {} })
  t.equal(invalid.status, 422)
  for (const field of ['metadata.name', 'eventTime', 'type', 'reportingController', 'reportingInstance', 'action', 'reason', 'note', 'regarding', 'regarding.namespace']) {
    t.ok(invalid.message.includes(`${field}: `), field)
  }
  t.match(await post({ ...valid, metadata: { name: 'p.1', namespace: 'other' } }), { status: 400 })
  t.match(await post({ ...valid, reason: 'r'.repeat(129) }), { status: 422, message: /reason: Invalid value/ })
})

t.test('stop() is prompt wherever the source is', async (t) => {
  const timed = async (source: KubeSource): Promise<number> => {
    const t0 = Date.now()
    await source.stop()
    return Date.now() - t0
  }
  // While watching.
  const watching = await harness(t)
  t.ok(await timed(watching.source) < 200, 'while watching')
  await until(() => watching.fake.openWatches === 0 && watching.fake.openConnections === 0, 'the server sees every connection closed', 500)
  t.ok(await timed(watching.source) < 50, 'a second stop() is a no-op')

  // While sleeping between retries (a 1 to 2 s backoff).
  const sleeping = await harness(t, { backoff: { initialMs: 2000, maxMs: 2000 } })
  sleeping.fake.failNext(1, 500, 'watch')
  sleeping.fake.endWatches()
  await until(() => sleeping.logs.some((l) => l.level === 'warn'), 'the failure')
  t.ok(await timed(sleeping.source) < 200, 'while sleeping')

  // While a watch request waits for headers that never come.
  const stalled = await harness(t, { requestTimeoutMs: 10_000 })
  stalled.fake.failNext(1, 'stall', 'watch')
  stalled.fake.endWatches()
  await until(() => stalled.watches()[1]?.answer === 'stall', 'the stalled watch')
  await pause(20)
  t.ok(await timed(stalled.source) < 200, 'while waiting for a watch response')

  // While a relist waits for an answer.
  const relisting = await harness(t, { requestTimeoutMs: 10_000 })
  relisting.fake.failNext(1, 'stall', 'list')
  relisting.fake.endWatches()
  relisting.fake.compact()
  relisting.fake.setConfigMap({ a: '1' }, 'another-configmap')
  relisting.fake.compact()
  await until(() => relisting.lists()[1]?.answer === 'stall', 'the stalled relist')
  t.ok(await timed(relisting.source) < 200, 'while relisting')

  // Right after start, before the first watch has its connection.
  const fake = await fakeKube(t)
  fake.setConfigMap({ [KEY]: yaml(1) })
  const { log } = recorder()
  const early = await startKubeSource({ namespace: fake.namespace, name: fake.name, key: KEY, onText: () => {}, onProblem: () => {}, log, kubeConfig: fake.kubeConfig() })
  t.ok(await timed(early) < 200, 'right after start')
  await pause(50)
  t.equal(fake.openWatches, 0, 'no watch left open')
  for (const f of [watching, sleeping, stalled, relisting]) {
    const count = f.fake.requests.length
    await until(() => f.fake.openConnections === 0, 'no connection left', 500)
    await pause(10)
    t.equal(f.fake.requests.length, count, 'no request after stop')
  }
  await until(() => fake.openConnections === 0, 'no connection left', 500)
})

t.test('after stop() the process exits by itself (no timers, no sockets left)', async (t) => {
  const kube = (name: string): string => JSON.stringify(fileURLToPath(new URL(`../sidecar/kube/${name}.ts`, import.meta.url)))
  const fakeModule = fileURLToPath(new URL('./fixtures/fake-kube.ts', import.meta.url))
  const script = `
    const { startFakeKube } = await import(${JSON.stringify(fakeModule)})
    const { connectKube } = await import(${kube('client')})
    const { ConfigMapReflector } = await import(${kube('reflector')})
    const { EventRecorder } = await import(${kube('events')})
    const fake = await startFakeKube()
    fake.setConfigMap({ 'config.yaml': 'a: 1' })
    let delivered
    const got = new Promise((resolve) => { delivered = resolve })
    const log = { info () {}, warn () {}, debug () {} }
    const client = await connectKube({ kubeConfig: fake.kubeConfig() })
    const reflector = new ConfigMapReflector(client, { namespace: fake.namespace, name: fake.name, key: 'config.yaml', log, backoff: { initialMs: 20, maxMs: 100 } })
    await reflector.open()
    reflector.start(delivered, () => {})
    const events = new EventRecorder(client, { name: 'p', namespace: fake.namespace }, log)
    while (fake.openWatches === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    fake.failNext(1, 'reset', 'watch')
    fake.endWatches()
    fake.setConfigMap({ 'config.yaml': 'a: 2' })
    await got
    await events.record('Normal', 'ConfigReloaded', 'ok')
    await reflector.stop()
    await events.stop()
    // Once the sockets' closes complete, only the fake's listening server (and this process's stdio) remain.
    await new Promise((resolve) => setTimeout(resolve, 50).unref())
    const left = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap')
    const connections = fake.openConnections
    await fake.close()
    process.stdout.write('stopped ' + JSON.stringify(left) + ' connections=' + connections + ' events=' + fake.events.length)
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('did not exit within 10 s') }, 10_000)
    child.on('exit', (c) => { clearTimeout(timer); resolve(c ?? 'signal') })
  })
  t.equal(code, 0, `child exit (stderr: ${err.trim()})`)
  t.equal(out, 'stopped ["TCPServerWrap"] connections=0 events=1', 'only the fake server was left after stop()')
  t.comment(out)
})

t.test('truncateUtf8', async (t) => {
  t.equal(truncateUtf8('short', 1024), 'short')
  t.equal(truncateUtf8('abcdef', 5), 'ab…')
  t.equal(truncateUtf8('€€€', 8), '€…', 'never splits a character')
  t.equal(Buffer.byteLength(truncateUtf8('x'.repeat(5000), 1024)), 1024)
})

t.test('every list and watch request carried the field selector; no log or problem carried the content', async (t) => {
  const configmapRequests = allFakes.flatMap((f) => f.requests.filter((r) => r.kind === 'list' || r.kind === 'watch'))
  t.ok(configmapRequests.length > 50, `${configmapRequests.length} requests`)
  // (One startup test asks, on purpose, for a ConfigMap RBAC does not allow: it still sends the selector.)
  const selectors = new Set(configmapRequests.map((r) => r.query.fieldSelector))
  t.same([...selectors].sort(), ['metadata.name=cors-config', 'metadata.name=someone-elses'], 'every one with fieldSelector=metadata.name=…')
  t.ok(configmapRequests.filter((r) => r.kind === 'watch').every((r) => r.query.allowWatchBookmarks === 'true' && r.query.resourceVersion !== undefined))
  const logged = JSON.stringify(allLogs) + JSON.stringify(allProblems)
  t.notOk(logged.includes(MARKER), 'the content never appears')
  t.notOk(logged.includes('maxAge'), 'not even part of it')
  t.ok(allLogs.length > 100)
})
