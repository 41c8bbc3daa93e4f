// Personal data and credentials never reach a log line, even from code that logs a whole request.
import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../sidecar/log.ts'
import { pathOnly } from '../sidecar/target.ts'

t.test('a logged request shows method and path only; credential headers are redacted', async (t) => {
  const lines: string[] = []
  const log = createLogger('info', new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } }))
  log.info({ req: { method: 'POST', url: '/process/text?email=jane@example.com', id: 'r1' } }, 'a request')
  log.info({ headers: { authorization: 'Bearer s3cret', cookie: 'sid=s3cret', 'x-api-key': 's3cret', accept: 'application/json' } }, 'headers')
  const out = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(out[0]?.req, { method: 'POST', path: '/process/text', requestId: 'r1' })
  t.same(out[1]?.headers, { authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', accept: 'application/json' })
  t.notMatch(lines.join(''), /jane@example\.com|s3cret/)
  t.equal(out[0]?.service, 'pai-cors-sidecar')
  log.info({ req: {} }, 'empty request')
  t.same(JSON.parse(lines[2] as string).req, { path: '' })
})

t.test('pathOnly drops the query string', async (t) => {
  t.equal(pathOnly('/a?b=c'), '/a')
  t.equal(pathOnly('/a'), '/a')
})

t.test('without a destination the logger writes to stdout', async (t) => {
  t.equal(typeof createLogger('silent').info, 'function')
})

t.test('on a terminal the lines are human-readable, and still redacted', async (t) => {
  const lines: string[] = []
  const log = createLogger('info', new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } }), true)
  log.info({ headers: { authorization: 'Bearer s3cret' }, route: '/process/text' }, 'request')
  log.flush()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const text = lines.join('')
  t.match(text, /INFO.*request/)
  t.match(text, /route: "\/process\/text"/)
  t.notMatch(text, /s3cret/)
  t.throws(() => JSON.parse(text), 'not JSON')
})

t.test('on a terminal without a given destination, the pretty printer writes to stdout', async (t) => {
  const log = createLogger('silent', undefined, true)
  log.info('nothing is written at level silent')
  t.equal(log.level, 'silent')
})
