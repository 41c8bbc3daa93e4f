// An unexpected failure inside the sidecar is a JSON 500 for that request, never a crash.
import t from 'tap'
import { Writable } from 'node:stream'
import { buildPublicApp } from '../sidecar/app.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { snapshot, testMetrics } from './fixtures/sidecar.ts'

t.test('a failure in the request path answers 500 internal_error and the next request works', async (t) => {
  const lines: string[] = []
  const store = new ConfigStore(snapshot('cors: { allowedOrigins: [https://app.example.com] }'))
  let fail = false
  const faulty = Object.assign(Object.create(store) as ConfigStore, {
    current: () => { if (fail) { fail = false; throw new Error('boom') } return store.current() }
  })
  const app = await buildPublicApp({ store: faulty, metrics: testMetrics(), logger: createLogger('info', new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })) })
  t.teardown(() => app.close())
  fail = true
  const res = await app.inject({ method: 'GET', url: '/nowhere' })
  t.equal(res.statusCode, 500)
  t.equal(res.json().error.code, 'internal_error')
  t.match(lines.join(''), /"msg":"unexpected error"/)
  t.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404)
})
