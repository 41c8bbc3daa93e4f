// Applying a new configuration text: all or nothing, last good kept, restart-only fields reported.
import t from 'tap'
import { Reloader, changedPaths } from '../sidecar/config/reload.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'

const BASE = 'cors: { allowedOrigins: [https://a.example.com] }\nlog: { level: info }\n'

function setup () {
  const store = new ConfigStore(snapshot(BASE))
  const metrics = testMetrics(store)
  const lines: { level: string; o: object; msg: string }[] = []
  const levels: string[] = []
  const log = {
    info: (o: object, msg: string) => { lines.push({ level: 'info', o, msg }) },
    warn: (o: object, msg: string) => { lines.push({ level: 'warn', o, msg }) },
    error: (o: object, msg: string) => { lines.push({ level: 'error', o, msg }) }
  }
  const reloader = new Reloader({ store, metrics, overrides: { upstream: 'http://127.0.0.1:9' }, source: 'test', log, setLevel: (l) => { levels.push(l) } })
  const reloads = async (result: string) => (await metrics.configReloads.get()).values.find((v) => v.labels.result === result)?.value
  return { store, reloader, lines, levels, reloads }
}

t.test('a valid change swaps the whole snapshot and applies the log level', async (t) => {
  const { store, reloader, levels, lines, reloads } = setup()
  const before = store.current()
  const out = reloader.apply('cors: { allowedOrigins: [https://b.example.com] }\nlog: { level: debug }\n')
  t.equal(out.result, 'success')
  t.not(store.current(), before)
  t.same(store.current().config.cors.allowedOrigins, ['https://b.example.com'])
  t.equal(store.generation, 2)
  t.same(levels, ['debug'])
  t.equal(await reloads('success'), 1)
  t.match(lines.at(-1), { level: 'info', msg: 'configuration reloaded', o: { previous: before.hash, generation: 2 } })
  t.match(reloader.status, { result: 'success', errors: [], pendingRestart: [] })
  t.match(reloader.status.at, /^\d{4}-\d\d-\d\dT/)
})

t.test('an invalid text keeps the last good configuration and says why, with paths', async (t) => {
  const { store, reloader, lines, reloads } = setup()
  const before = store.current()
  const out = reloader.apply('cors: { allowedOrigins: ["https://*.com", "null"], maxAge: 999999 }\n')
  t.equal(out.result, 'failure')
  t.equal(store.current(), before, 'nothing changed')
  t.equal(store.generation, 1)
  t.equal(out.errors.length, 3)
  t.match(reloader.status, { result: 'failure', errors: [/^cors\.maxAge/, /^cors\.allowedOrigins\[0\]/, /^cors\.allowedOrigins\[1\]/] })
  t.equal(await reloads('failure'), 1)
  t.match(lines.at(-1), { level: 'error', msg: 'configuration rejected: the last good configuration still serves' })
  t.equal(reloader.apply('not: [valid').result, 'failure', 'YAML errors too')
  // A later good text clears the errors.
  t.equal(reloader.apply('cors: { allowedOrigins: [https://c.example.com] }').result, 'success')
  t.same(reloader.status.errors, [])
})

t.test('restart-only fields are reported and kept at their running values; the rest applies', async (t) => {
  const { store, reloader, lines } = setup()
  const out = reloader.apply('server: { port: 8123 }\nupstream: { maxConcurrent: 7 }\ncors: { allowedOrigins: [https://d.example.com] }\n')
  t.equal(out.result, 'success')
  t.same(out.pendingRestart, ['server.port', 'upstream.maxConcurrent'])
  t.equal(store.current().config.server.port, 8000, 'the running port stays in the snapshot')
  t.equal(store.current().config.upstream.maxConcurrent, 32)
  t.same(store.current().config.cors.allowedOrigins, ['https://d.example.com'])
  t.ok(lines.some((l) => l.level === 'warn' && /only after a restart/.test(l.msg)))
  // Only restart-only changes: nothing to swap, but still reported.
  const only = reloader.apply('server: { port: 8123 }\nupstream: { maxConcurrent: 7 }\ncors: { allowedOrigins: [https://d.example.com] }\n')
  t.equal(only.result, 'unchanged')
  t.same(reloader.status.pendingRestart, ['server.port', 'upstream.maxConcurrent'])
})

t.test('the same configuration again (or a comment edit) changes nothing', async (t) => {
  const { store, reloader, reloads } = setup()
  t.equal(reloader.apply(`# a comment\n${BASE}`).result, 'unchanged')
  t.equal(store.generation, 1)
  t.equal(await reloads('success'), 0)
})

t.test('changedPaths lists differing leaves with dotted paths', async (t) => {
  t.same(changedPaths({ a: 1, b: { c: 2, d: [1] } }, { a: 1, b: { c: 3, d: [2] }, e: 'x' }, 'x'), ['x.b.c', 'x.b.d', 'x.e'])
  t.same(changedPaths({ a: 1 }, { a: 1 }, 'x'), [])
})

t.test('the websocket block reloads live: every field is read per upgrade', async (t) => {
  const { store, reloader } = setup()
  const out = reloader.apply(`${BASE}websocket: { enabled: true, path: /stream, maxConnections: 5, countsAsInFlight: false }\n`)
  t.equal(out.result, 'success')
  t.same(out.pendingRestart, [])
  t.match(store.current().config.websocket, { enabled: true, path: '/stream', maxConnections: 5, countsAsInFlight: false })
})

t.test('a rejected reload names every problem at once, duration bounds included', async (t) => {
  const { store, reloader } = setup()
  const out = reloader.apply('cors: { allowedOrigins: ["https://*.com"] }\nlimits: { bodyIdleTimeout: 0ms }\nupstream: { maxConcurrent: many }\n')
  t.equal(out.result, 'failure')
  t.equal(out.errors.length, 3)
  t.match(out.errors, [/^upstream\.maxConcurrent: /, /^cors\.allowedOrigins\[0\]: .*public suffix/, /^limits\.bodyIdleTimeout: "0ms" is too short/])
  t.equal(store.generation, 1)
})

t.test('a reload with restart-only changes compiles the kept blocks into the snapshot it swaps in', async (t) => {
  const { store, reloader } = setup()
  const running = store.current()
  t.equal(reloader.apply('shutdown: { delay: 1s }\nupstream: { requestTimeout: 9s }\ncors: { allowedOrigins: [https://e.example.com] }\n').result, 'success')
  const now = store.current()
  t.equal(now.ms.shutdownDelay, running.ms.shutdownDelay, 'the running shutdown.delay, in milliseconds too')
  t.equal(now.ms.requestTimeout, running.ms.requestTimeout)
  t.same(now.cors.settings.allowedOrigins, ['https://e.example.com'], 'the new policy is compiled')
  t.ok(Object.isFrozen(now.config) && Object.isFrozen(now.config.upstream))
  t.equal(now.config.upstream.url, 'http://127.0.0.1:9', 'the overrides still apply')
})
