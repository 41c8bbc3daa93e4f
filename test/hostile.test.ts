// Hostile clients, over raw TCP (fetch and node:http would normalise or refuse these bytes): request
// smuggling shapes, oversized and numerous headers, invalid bytes, odd request-target forms, allowlist
// escapes, odd methods and origins, pipelining, oversized bodies, slow senders. For every case: a precise
// 4xx (our JSON error) or a refusal at the connection level with a well-formed HTTP error; nothing the
// route allowlist forbids ever reaches the upstream (checked on what the upstream really received); and
// the sidecar still answers a normal request afterwards.
//
// Subtests after a "Regression" comment each reproduce a bug these tests found (now fixed).
import t, { type Test } from 'tap'
import type { IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ERRORS } from '../sidecar/errors.ts'
import { healthyRequest, notPermitted } from './fixtures/fuzz.ts'
import { RawConnection, errorOf, exchange, show, type Exchange, type RawResponse } from './fixtures/raw.ts'
import { startSidecar, type TestSidecar } from './fixtures/sidecar.ts'
import { startUpstream, type Received, type Upstream } from './fixtures/upstream.ts'

const APP = 'https://app.example.com'
const BASE = `
routes:
  - { path: /process/text, methods: [POST] }
  - { path: /files/, methods: [GET] }
cors:
  allowedOrigins: [${APP}, "https://*.example.com"]
  allowedMethods: [POST]
  allowedHeaders: [content-type, x-request-id]
`
const MAX_BODY = 1024
const CONFIG = `${BASE}limits: { maxBodyBytes: ${MAX_BODY} }\n`
const SLOW_CONFIG = `${BASE}server: { headersTimeout: 1s }\nlimits: { bodyIdleTimeout: 500ms }\n`
/** A forwarded request whose body then fails may reach the upstream a moment after the client's answer. */
const SETTLE_MS = 60
const READ_MS = 5000

let up: Upstream
let sc: TestSidecar
let slow: TestSidecar
/** The upstream's IncomingMessage for each recorded request: was it received completely or aborted? */
const upstreamReq = new WeakMap<Received, IncomingMessage>()

t.before(async () => {
  up = await startUpstream()
  // Runs after the fixture's own listener, which has just recorded this request.
  up.server.on('request', (req: IncomingMessage) => {
    const rec = up.received.at(-1)
    if (rec !== undefined) upstreamReq.set(rec, req)
  })
  sc = await startSidecar(CONFIG, up.url, 'warn')
  slow = await startSidecar(SLOW_CONFIG, up.url, 'warn')
})
t.teardown(async () => { await sc.close(); await slow.close(); await up.close() })

const H = 'Host: sidecar.test\r\n'
const SMUGGLED = `GET /metrics HTTP/1.1\r\n${H}\r\n`
const desc = (r: Received): string => `${r.method} ${r.url}`
const aborted = (r: Received): boolean => upstreamReq.get(r)?.complete !== true

interface Want {
  status: number[]
  /** Error codes allowed when the sidecar answers itself (status other than 200/204). */
  code?: string[]
  /** The connection must be closed after the answer (a refusal at the connection level). */
  closes?: boolean
  /** What may reach the upstream: nothing (default), or at most one allowlisted request. */
  upstream?: 'none' | 'at-most-one'
  target?: TestSidecar
}

function assertJsonError (t: Test, res: RawResponse, codes: string[] | undefined): void {
  const err = errorOf(res)
  t.ok(err !== undefined, `our JSON error body (got ${JSON.stringify(res.text.slice(0, 200))})`)
  if (err === undefined) return
  t.match(res.headers['content-type'], /^application\/json/, 'JSON content type')
  t.equal((ERRORS as Record<string, { status: number } | undefined>)[err.code]?.status, res.status, `code ${err.code} belongs to status ${res.status}`)
  if (codes !== undefined) t.ok(codes.includes(err.code), `code ${err.code} is one of ${codes.join(', ')}`)
  t.type(err.requestId, 'string')
}

async function assertHealthy (t: Test, target = sc): Promise<void> {
  const res = await healthyRequest(target.url)
  t.equal(res.status, 200, 'a normal request still works afterwards')
}

/** Send the bytes on a fresh connection and check the answer, the upstream and the sidecar's health. */
async function hostile (t: Test, data: string | Buffer, want: Want): Promise<{ ex: Exchange; seen: Received[] }> {
  const target = want.target ?? sc
  const before = up.received.length
  // Only a refusal at the connection level is waited for; otherwise the connection is looked at as is.
  const ex = await exchange(target.url, data, { timeoutMs: READ_MS, closeWaitMs: want.closes === true ? 2000 : 0 })
  const res = ex.response
  t.ok(res !== undefined, `answered with an HTTP response (${ex.failure ?? 'ok'}); sent ${show(data)}`)
  if (res !== undefined) {
    const what = res.status === 200
      ? '(the upstream\'s answer)'
      : res.status === 204
        ? '(preflight answered)'
        : errorOf(res)?.code ?? (res.text === '' ? '(empty body)' : '(not our JSON)')
    t.comment(`→ ${res.status} ${what}${ex.closed ? ', connection closed' : ''}`)
    t.ok(want.status.includes(res.status), `status ${res.status} is one of ${want.status.join(', ')}`)
    t.ok(res.status < 500, 'never a 5xx')
    if (res.status !== 200 && res.status !== 204) assertJsonError(t, res, want.code)
    if (want.closes === true) t.ok(ex.closed, 'the connection is closed after the error')
  } else {
    t.comment(`→ no response: ${ex.failure ?? ''}`)
  }
  await sleep(SETTLE_MS)
  const seen = up.received.slice(before)
  t.same(seen.filter((r) => notPermitted(r.method, r.url) !== undefined).map(desc), [], 'nothing the allowlist forbids reached the upstream')
  if ((want.upstream ?? 'none') === 'none') t.same(seen.map(desc), [], 'the upstream saw nothing')
  else t.ok(seen.length <= 1, `at most one request reached the upstream (saw ${JSON.stringify(seen.map(desc))})`)
  await assertHealthy(t, target)
  return { ex, seen }
}

const BAD_REQUEST: Want = { status: [400], code: ['bad_request'], closes: true }
const post = (headers: string, body = '{}'): string => `POST /process/text HTTP/1.1\r\n${H}Content-Type: application/json\r\n${headers}\r\n${body}`

// ------------------------------------------------------------------------------ request smuggling

t.test('smuggling: Content-Length and Transfer-Encoding together', async (t) => {
  await t.test('CL then TE', (t) => hostile(t, post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`), BAD_REQUEST))
  await t.test('TE then CL', (t) => hostile(t, post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', `0\r\n\r\n${SMUGGLED}`), BAD_REQUEST))
})

t.test('smuggling: two different Content-Length headers', (t) =>
  hostile(t, post('Content-Length: 2\r\nContent-Length: 36\r\n', `{}${SMUGGLED}`), BAD_REQUEST))

t.test('smuggling: duplicate identical Content-Length', async (t) => {
  await t.test('two lines', (t) => hostile(t, post('Content-Length: 2\r\nContent-Length: 2\r\n'), BAD_REQUEST))
  await t.test('one line, a list', (t) => hostile(t, post('Content-Length: 2, 2\r\n'), BAD_REQUEST))
})

t.test('smuggling: Transfer-Encoding other than chunked', async (t) => {
  const chunkedBody = `2\r\n{}\r\n0\r\n\r\n${SMUGGLED}`
  for (const te of ['chunked, identity', 'identity', 'xchunked', 'chunked\r\nTransfer-Encoding: chunked', 'CHUNKED, gzip']) {
    await t.test(JSON.stringify(te), (t) => hostile(t, post(`Transfer-Encoding: ${te}\r\n`, chunkedBody), BAD_REQUEST))
  }
  // chunked is last, so Node frames the body as chunked (RFC 9112 §6.1) and forwards it: exactly one
  // allowlisted request with exactly the 2 body bytes; the GET /metrics after it is a second, pipelined
  // request that the sidecar answers itself.
  await t.test('"gzip, chunked" (chunked last: accepted)', async (t) => {
    const { ex, seen } = await hostile(t, post('Transfer-Encoding: gzip, chunked\r\n', chunkedBody), { status: [200, 400], code: ['bad_request'], upstream: 'at-most-one' })
    if (ex.response?.status === 200) {
      t.same(seen.map(desc), ['POST /process/text'])
      t.equal(seen[0]?.bytes, 2, 'the upstream got the chunked body and nothing after it')
    }
  })
})

t.test('smuggling: obs-fold (a header line continued with leading whitespace)', async (t) => {
  await t.test('space', (t) => hostile(t, post('X-Note: a\r\n folded\r\nContent-Length: 2\r\n'), BAD_REQUEST))
  await t.test('tab', (t) => hostile(t, post('X-Note: a\r\n\tfolded\r\nContent-Length: 2\r\n'), BAD_REQUEST))
  await t.test('folded Content-Length', (t) => hostile(t, post('Content-Length: 2\r\n 0\r\n', `{}${'x'.repeat(18)}`), BAD_REQUEST))
})

t.test('smuggling: a chunked body with a bad chunk size', async (t) => {
  // Node dispatches the request once its head is complete, so a body error found later may come after
  // the request was forwarded: then it must be one allowlisted request, aborted, not completed.
  for (const [name, body] of [
    ['not hex', `zz\r\n{}\r\n0\r\n\r\n${SMUGGLED}`],
    ['negative after a good chunk', `2\r\n{}\r\n-1\r\n\r\n${SMUGGLED}`],
    ['overflowing size', 'fffffffffffffffffff\r\n{}\r\n0\r\n\r\n'],
    ['0x prefix', '0x2\r\n{}\r\n0\r\n\r\n']
  ] as const) {
    await t.test(name, async (t) => {
      const { seen } = await hostile(t, post('Transfer-Encoding: chunked\r\n', body), { ...BAD_REQUEST, upstream: 'at-most-one' })
      for (const r of seen) t.ok(aborted(r), `${desc(r)} was aborted at the upstream, not completed`)
    })
  }
})

t.test('smuggling: bare LF line endings', async (t) => {
  await t.test('everywhere', (t) => hostile(t, 'POST /process/text HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 2\n\n{}', BAD_REQUEST))
  await t.test('one header line', (t) => hostile(t, 'POST /process/text HTTP/1.1\r\nHost: x\nContent-Length: 2\r\n\r\n{}', BAD_REQUEST))
  await t.test('the blank line', (t) => hostile(t, 'POST /process/text HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\n{}', BAD_REQUEST))
})

t.test('smuggling: whitespace before the colon', async (t) => {
  await t.test('Content-Length : 5', (t) => hostile(t, post('Content-Length : 5\r\n', `{}${SMUGGLED}`), BAD_REQUEST))
  await t.test('Transfer-Encoding<TAB>:', (t) => hostile(t, post('Transfer-Encoding\t: chunked\r\nContent-Length: 2\r\n'), BAD_REQUEST))
})

// ----------------------------------------------------------------------------------- header limits

t.test('headers larger than server.maxHeaderBytes → 431', (t) =>
  hostile(t, post(`X-Big: ${'a'.repeat(17000)}\r\nContent-Length: 2\r\n`), { status: [431], code: ['headers_too_large'], closes: true }))

t.test('more header lines than limits.maxHeaders (under the byte limit) → 431', async (t) => {
  const lines = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('')
  // Host + Content-Type + Content-Length + n: 100 lines are allowed, 101 are not.
  await t.test('101 lines', (t) => hostile(t, post(`${lines(98)}Content-Length: 2\r\n`), { status: [431], code: ['headers_too_large'] }))
  await t.test('1000 lines', (t) => hostile(t, post(`${lines(997)}Content-Length: 2\r\n`), { status: [431], code: ['headers_too_large'] }))
  await t.test('exactly 100 lines are forwarded', async (t) => {
    const { ex, seen } = await hostile(t, post(`${lines(97)}Content-Length: 2\r\n`), { status: [200], upstream: 'at-most-one' })
    t.equal(ex.response?.status, 200)
    t.same(seen.map(desc), ['POST /process/text'])
  })
})

// Regression (found by these tests, fixed): 16180-16319 bytes of one header pass the sidecar (limit 16384), which then adds X-Forwarded-*/X-Request-Id; the upstream (Node here, uvicorn/h11 in production, both limited to 16 KiB) refuses them, and its bare 431 (empty body, not JSON) is relayed to the client
t.test('headers just under server.maxHeaderBytes: forwarded, or our JSON 431', (t) => hostile(t, post(`X-Big: ${'a'.repeat(16250)}\r\nContent-Length: 2\r\n`), { status: [200, 431], code: ['headers_too_large'], upstream: 'at-most-one' }))

t.test('a 1 MB Origin → 431', (t) =>
  hostile(t, post(`Origin: https://${'a'.repeat(1024 * 1024)}.example.com\r\nContent-Length: 2\r\n`), { status: [431], code: ['headers_too_large'], closes: true }))

t.test('thousands of Access-Control-Request-Headers items → 403, answered fast', async (t) => {
  const abc = 'abcdefghijklmnopqrstuvwxyz'
  const names = Array.from({ length: 3000 }, (_, i) => `${abc[Math.floor(i / 676) % 26]}${abc[Math.floor(i / 26) % 26]}${abc[i % 26]}`)
  const preflight = `OPTIONS /process/text HTTP/1.1\r\n${H}Origin: ${APP}\r\nAccess-Control-Request-Method: POST\r\n` +
    `Access-Control-Request-Headers: ${names.join(',')}\r\n\r\n`
  t.ok(preflight.length < 16384, `${preflight.length} bytes: under server.maxHeaderBytes`)
  const { ex } = await hostile(t, preflight, { status: [403], code: ['cors_preflight_denied'] })
  t.ok(ex.ms < 1000, `answered in ${Math.round(ex.ms)} ms`)
  t.match(errorOf(ex.response)?.message, /more than 64 header names/)
  t.same(Object.keys(ex.response?.headers ?? {}).filter((h) => h.startsWith('access-control-')), [], 'no Access-Control-* headers on a denied preflight')
})

// --------------------------------------------------------------------------------- invalid bytes

t.test('control bytes and NUL in a header value → 400', async (t) => {
  for (const [name, byte] of [['SOH', '\x01'], ['NUL', '\x00'], ['ESC', '\x1b'], ['DEL', '\x7f'], ['VT', '\x0b'], ['bare CR', '\r']] as const) {
    await t.test(name, (t) => hostile(t, post(`X-Note: a${byte}b\r\nContent-Length: 2\r\n`), BAD_REQUEST))
  }
  await t.test('NUL in Origin', (t) => hostile(t, post(`Origin: ${APP}\x00\r\nContent-Length: 2\r\n`), BAD_REQUEST))
})

t.test('invalid UTF-8 in a header value: never a 5xx', async (t) => {
  // Bytes 0x80-0xFF are obs-text, which RFC 9110 §5.5 allows in field values; Node accepts them. What
  // matters here: no 5xx, and if the request is forwarded the upstream gets those bytes unchanged.
  await t.test('an ordinary header', async (t) => {
    const { ex, seen } = await hostile(t, post('X-Note: a\xff\xfeb\xc3\x28\r\nContent-Length: 2\r\n'), { status: [200, 400], code: ['bad_request'], upstream: 'at-most-one' })
    if (ex.response?.status === 200) t.equal(seen[0]?.headers['x-note'], 'a\xff\xfeb\xc3\x28', 'forwarded byte for byte')
  })
  await t.test('x-request-id is replaced, not echoed', async (t) => {
    const { ex } = await hostile(t, post('X-Request-Id: id\xff\r\nContent-Length: 2\r\n'), { status: [200, 400], code: ['bad_request'], upstream: 'at-most-one' })
    if (ex.response?.status === 200) t.match(ex.response.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  })
})

t.test('invalid bytes in the path → 400', async (t) => {
  for (const [name, target] of [
    ['invalid UTF-8', '/files/\xff\xfe'],
    ['raw UTF-8 (not percent-encoded)', Buffer.from('/files/é', 'utf8').toString('latin1')],
    ['control byte', '/files/a\x01b'],
    ['NUL byte', '/files/a\x00b'],
    ['DEL', '/files/a\x7fb']
  ] as const) {
    await t.test(name, (t) => hostile(t, `GET ${target} HTTP/1.1\r\n${H}\r\n`, BAD_REQUEST))
  }
  await t.test('percent-encoded invalid UTF-8 (%ff)', (t) => hostile(t, `GET /files/%ff HTTP/1.1\r\n${H}\r\n`, { status: [400], code: ['bad_request'] }))
  await t.test('percent-encoded NUL (%00) → 404', (t) => hostile(t, `POST /process/text%00 HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, { status: [404], code: ['not_found'] }))
})

t.test('a non-ASCII Origin → 403', async (t) => {
  await t.test('Latin-1 byte', (t) => hostile(t, post('Origin: https://\xe4pp.example.com\r\nContent-Length: 2\r\n'), { status: [403], code: ['cors_origin_denied'] }))
  const utf8 = Buffer.from('https://äpp.example.com', 'utf8').toString('latin1')
  await t.test('UTF-8', (t) => hostile(t, post(`Origin: ${utf8}\r\nContent-Length: 2\r\n`), { status: [403], code: ['cors_origin_denied'] }))
  await t.test('punycode of a look-alike', (t) => hostile(t, post('Origin: https://xn--pp-qla.example.com.evil.net\r\nContent-Length: 2\r\n'), { status: [403], code: ['cors_origin_denied'] }))
})

// ------------------------------------------------------------------------------- request targets

t.test('absolute-form target → 400 bad_path', async (t) => {
  await t.test('another host', (t) => hostile(t, `POST http://evil.example/process/text HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\n{}`, { status: [400], code: ['bad_path'] }))
  await t.test('this host', (t) => hostile(t, `GET ${sc.url}/files/a HTTP/1.1\r\n${H}\r\n`, { status: [400], code: ['bad_path'] }))
  await t.test('scheme-relative', (t) => hostile(t, `GET //evil.example/files/a HTTP/1.1\r\n${H}\r\n`, { status: [400], code: ['bad_path'] }))
})

// Regression (found by these tests, fixed): CONNECT gets no HTTP response at all: Node has no "connect" listener and destroys the socket
t.test('authority-form target (CONNECT) is refused with an HTTP error', (t) =>
  hostile(t, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', { status: [400, 405], code: ['bad_request', 'bad_path', 'method_not_allowed'] }))

t.test('asterisk-form target (OPTIONS *)', async (t) => {
  await t.test('plain → 400 bad_path', (t) => hostile(t, `OPTIONS * HTTP/1.1\r\n${H}\r\n`, { status: [400], code: ['bad_path'] }))
  // A preflight is answered by the sidecar whatever the path (never forwarded).
  await t.test('as a preflight: answered here', (t) => hostile(t, `OPTIONS * HTTP/1.1\r\n${H}Origin: ${APP}\r\nAccess-Control-Request-Method: POST\r\n\r\n`, { status: [204, 400, 403], code: ['bad_path', 'cors_preflight_denied'] }))
})

// ----------------------------------------------------------------------------- allowlist escapes

/** [method, target, expected code]: the allowlisted method, so only the path check stands in the way. */
const ESCAPES: [string, string, string][] = [
  ['POST', '/process/text/../../metrics', 'bad_path'],
  ['POST', '/process/text/%2e%2e/%2e%2e/metrics', 'bad_path'],
  ['POST', '/%2e%2e/metrics', 'bad_path'],
  ['GET', '//metrics', 'bad_path'],
  ['POST', '/process/text/..%2fmetrics', 'bad_path'],
  ['POST', '/process%2ftext', 'bad_path'],
  ['POST', '/process%2Ftext', 'bad_path'],
  ['POST', '/PROCESS/TEXT', 'not_found'],
  ['POST', '/Process/text', 'not_found'],
  ['POST', '/process/text;/../metrics', 'bad_path'],
  ['POST', '/process/text;jsessionid=1', 'not_found'],
  ['POST', '/process/text%00', 'not_found'],
  ['POST', '/process/text\\..\\metrics', 'bad_path'],
  ['POST', '/process/text%5c..%5cmetrics', 'bad_path'],
  ['POST', '/process/text/', 'not_found'],
  ['POST', '/process/text/.', 'bad_path'],
  ['POST', '/process/./text', 'bad_path'],
  ['POST', '/./process/text', 'bad_path'],
  ['POST', '/process/text#/../../metrics', 'bad_path'],
  ['GET', '/metrics', 'not_found'],
  ['GET', '/diagnostics', 'not_found'],
  ['GET', '/healthz', 'not_found'],
  ['POST', '/process/files/uri', 'not_found'],
  ['GET', '/v3/../metrics', 'bad_path'],
  ['GET', '/files/../metrics', 'bad_path'],
  ['GET', '/files/%2e%2e/metrics', 'bad_path'],
  ['GET', '/files/%2E%2E/metrics', 'bad_path'],
  ['GET', '/files/.%2e/metrics', 'bad_path'],
  ['GET', '/files/..', 'bad_path'],
  ['GET', '/files/./../metrics', 'bad_path'],
  ['GET', '/files//metrics', 'bad_path'],
  ['GET', '/files/x%2f..%2f..%2fmetrics', 'bad_path'],
  ['GET', '/files/%5c..%5cmetrics', 'bad_path'],
  ['GET', '/files/..\\metrics', 'bad_path'],
  ['GET', '/files/%c0%ae%c0%ae/metrics', 'bad_request'],
  ['GET', '/files', 'not_found'],
  ['GET', '/FILES/a', 'not_found']
]

for (const [method, target, code] of ESCAPES) {
  t.test(`allowlist escape: ${method} ${target}`, (t) =>
    hostile(t, `${method} ${target} HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, { status: [ERRORS[code as keyof typeof ERRORS].status], code: [code] }))
}

t.test('allowlist escape: tab or space in the path → 400', async (t) => {
  await t.test('space', (t) => hostile(t, `POST /process /text HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, BAD_REQUEST))
  await t.test('tab', (t) => hostile(t, `POST /process/text\t/../metrics HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, BAD_REQUEST))
  await t.test('tab in a prefix route', (t) => hostile(t, `GET /files/a\tb HTTP/1.1\r\n${H}\r\n`, BAD_REQUEST))
})

t.test('allowlist: encodings the upstream decodes once stay inside the prefix, forwarded verbatim', async (t) => {
  for (const [target, path] of [
    ['/files/%252e%252e/metrics', '/files/%252e%252e/metrics'],
    ['/files/?/../../metrics', '/files/']
  ] as const) {
    await t.test(target, async (t) => {
      const { seen } = await hostile(t, `GET ${target} HTTP/1.1\r\n${H}\r\n`, { status: [200], upstream: 'at-most-one' })
      t.same(seen.map((r) => r.url.split('?')[0]), [path], 'the upstream got the path as sent, not decoded or normalised')
    })
  }
})

// Regression (found by these tests, fixed): GET /files/..foo, /files/..;/metrics, /files/a../b pass the allowlist; @fastify/reply-from then throws "source/request contain invalid characters" and the error handler answers 500 internal_error
t.test('allowlist: a segment that starts or ends with ".." under a prefix route is never a 5xx', async (t) => {
  for (const target of ['/files/..foo', '/files/..;/metrics', '/files/a../b', '/files/...']) {
    await t.test(target, async (t) => {
      const { ex, seen } = await hostile(t, `GET ${target} HTTP/1.1\r\n${H}\r\n`, { status: [200, 400], code: ['bad_path'], upstream: 'at-most-one' })
      if (ex.response?.status === 200) t.same(seen.map((r) => r.url), [target], 'forwarded verbatim')
    })
  }
})

// --------------------------------------------------------------------------------------- methods

t.test('method: unknown (FOO) → 400', (t) => hostile(t, `FOO /process/text HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, BAD_REQUEST))
t.test('method: lowercase post → 400', (t) => hostile(t, post('Content-Length: 2\r\n').replace(/^POST/, 'post'), BAD_REQUEST))
t.test('method: TRACE → 405 with Allow', async (t) => {
  const { ex } = await hostile(t, `TRACE /process/text HTTP/1.1\r\n${H}\r\n`, { status: [405], code: ['method_not_allowed'] })
  t.equal(ex.response?.headers.allow, 'POST')
  await t.test('under a prefix route', (t) => hostile(t, `TRACE /files/a HTTP/1.1\r\n${H}\r\n`, { status: [405], code: ['method_not_allowed'] }))
})
t.test('method: other known methods on allowlisted paths → 405', async (t) => {
  for (const [method, target] of [['PUT', '/process/text'], ['DELETE', '/files/a'], ['PROPFIND', '/files/'], ['PATCH', '/process/text'], ['SEARCH', '/files/a']]) {
    await t.test(`${method} ${target}`, (t) => hostile(t, `${method} ${target} HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, { status: [405], code: ['method_not_allowed'] }))
  }
})
// Regression (found by these tests, fixed): CONNECT gets no HTTP response at all: Node has no "connect" listener and destroys the socket
t.test('method: CONNECT on an allowlisted path is refused with an HTTP error', (t) =>
  hostile(t, `CONNECT /process/text HTTP/1.1\r\n${H}\r\n`, { status: [400, 405], code: ['bad_request', 'method_not_allowed'] }))

// --------------------------------------------------------------------------------------- origins

t.test('Origin edge cases on a POST → 403, never forwarded', async (t) => {
  for (const [name, lines] of [
    ['two Origin headers', `Origin: ${APP}\r\nOrigin: https://evil.example\r\n`],
    ['two identical Origin headers', `Origin: ${APP}\r\nOrigin: ${APP}\r\n`],
    ['null', 'Origin: null\r\n'],
    ['with a path', `Origin: ${APP}/process\r\n`],
    ['with a trailing slash', `Origin: ${APP}/\r\n`],
    ['upper case', 'Origin: https://APP.EXAMPLE.COM\r\n'],
    ['upper-case scheme', 'Origin: HTTPS://app.example.com\r\n'],
    ['default port written out', 'Origin: https://app.example.com:443\r\n'],
    ['http instead of https', 'Origin: http://app.example.com\r\n'],
    ['userinfo', 'Origin: https://user@app.example.com\r\n'],
    ['trailing dot', 'Origin: https://app.example.com.\r\n'],
    ['the apex of a wildcard', 'Origin: https://example.com\r\n'],
    ['a suffix look-alike', 'Origin: https://app.example.com.evil.net\r\n']
  ] as const) {
    await t.test(name, (t) => hostile(t, post(`${lines}Content-Length: 2\r\n`), { status: [403], code: ['cors_origin_denied'] }))
  }
})

// ------------------------------------------------------------------------------------ pipelining

t.test('200 pipelined requests on one connection: all answered in order, connection still usable', async (t) => {
  const before = up.received.length
  const conn = await RawConnection.open(sc.url)
  t.teardown(() => { conn.destroy() })
  let batch = ''
  for (let i = 0; i < 200; i++) batch += `GET /nowhere/${i} HTTP/1.1\r\n${H}X-Request-Id: pipe-${i}\r\n\r\n`
  await conn.write(batch)
  const got: string[] = []
  for (let i = 0; i < 200; i++) {
    const res = await conn.read({ timeoutMs: READ_MS })
    got.push(`${res.status} ${res.headers['x-request-id']} ${errorOf(res)?.code}`)
  }
  t.same(got, Array.from({ length: 200 }, (_, i) => `404 pipe-${i} not_found`), 'every answer, in order')
  t.notOk(conn.closed, 'the connection is still open')
  await conn.write(post(`Origin: ${APP}\r\nX-Request-Id: pipe-last\r\nContent-Length: 2\r\n`))
  const last = await conn.read({ timeoutMs: READ_MS })
  t.equal(last.status, 200, 'a normal request on the same connection works')
  t.equal(last.headers['x-request-id'], 'pipe-last')
  t.same(up.received.slice(before).map(desc), ['POST /process/text'], 'only the normal request reached the upstream')
})

// ---------------------------------------------------------------------------------------- bodies

t.test('a body declared larger than maxBodyBytes → 413, never forwarded', async (t) => {
  await t.test('Content-Length', (t) => hostile(t, post(`Content-Length: ${MAX_BODY + 1}\r\n`, 'x'.repeat(10)), { status: [413], code: ['payload_too_large'], closes: true }))
  await t.test('Content-Length far beyond', (t) => hostile(t, post('Content-Length: 9007199254740991\r\n', 'x'.repeat(10)), { status: [413], code: ['payload_too_large'], closes: true }))
  await t.test('chunked, over the limit (aborted if it was already forwarded)', async (t) => {
    const size = MAX_BODY * 2
    const { seen } = await hostile(t, post('Transfer-Encoding: chunked\r\n', `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n0\r\n\r\n`), { status: [413], code: ['payload_too_large'], closes: true, upstream: 'at-most-one' })
    for (const r of seen) t.ok(aborted(r), 'the upstream request was aborted')
  })
  await t.test('exactly maxBodyBytes is forwarded', async (t) => {
    const { seen } = await hostile(t, post(`Content-Length: ${MAX_BODY}\r\n`, 'x'.repeat(MAX_BODY)), { status: [200], upstream: 'at-most-one' })
    t.equal(seen[0]?.bytes, MAX_BODY)
  })
})

// ---------------------------------------------------------------------------------- slow senders

t.test('slow-loris on headers (one byte per 100 ms) → 408 within a few seconds', async (t) => {
  const before = up.received.length
  const conn = await RawConnection.open(slow.url)
  t.teardown(() => { conn.destroy() })
  const request = post(`Origin: ${APP}\r\nX-Padding: ${'p'.repeat(80)}\r\nContent-Length: 2\r\n`)
  let stop = false
  const started = performance.now()
  const drip = (async () => {
    for (const ch of request) {
      if (stop || conn.closed) return
      await conn.write(ch)
      await sleep(100)
    }
  })()
  try {
    const res = await conn.read({ timeoutMs: READ_MS })
    const ms = performance.now() - started
    t.comment(`→ ${res.status} ${errorOf(res)?.code} after ${Math.round(ms)} ms`)
    t.equal(res.status, 408)
    assertJsonError(t, res, ['request_timeout'])
    t.ok(ms < 4000, `answered after ${Math.round(ms)} ms (headersTimeout 1 s)`)
    t.ok(await conn.waitClosed(2000), 'the connection is closed')
  } finally {
    stop = true
    await drip
  }
  t.same(up.received.slice(before).map(desc), [], 'the upstream saw nothing')
  await assertHealthy(t, slow)
})

/** 10 bytes of a body of `length`, then silence: the sidecar answers 408 after limits.bodyIdleTimeout. */
async function slowBody (t: Test, length: number): Promise<Received[]> {
  const before = up.received.length
  const conn = await RawConnection.open(slow.url)
  t.teardown(() => { conn.destroy() })
  const started = performance.now()
  await conn.write(post(`Origin: ${APP}\r\nContent-Length: ${length}\r\n`, '{"text":["'))
  const res = await conn.read({ timeoutMs: READ_MS })
  const ms = performance.now() - started
  t.comment(`→ ${res.status} ${errorOf(res)?.code} after ${Math.round(ms)} ms`)
  t.equal(res.status, 408)
  assertJsonError(t, res, ['request_timeout'])
  t.equal(res.headers['access-control-allow-origin'], APP, 'the page can read the error')
  t.ok(ms >= 400 && ms < 4000, `answered after ${Math.round(ms)} ms (bodyIdleTimeout 500 ms)`)
  t.ok(await conn.waitClosed(2000), 'the connection is closed')
  await sleep(SETTLE_MS)
  return up.received.slice(before)
}

t.test('slow small body (10 of 100 bytes, then silence) → 408, and the upstream never sees it', async (t) => {
  // A body of at most 64 KiB with a declared length is held until complete before it is forwarded.
  t.same((await slowBody(t, 100)).map(desc), [], 'nothing reached the upstream')
  await assertHealthy(t, slow)
})

t.test('slow large body (10 of 100 000 bytes, then silence) → 408, and the upstream request is aborted', async (t) => {
  const seen = await slowBody(t, 100_000)
  t.same(seen.map(desc), ['POST /process/text'], 'the request had been forwarded (streaming)')
  for (const r of seen) {
    t.ok(aborted(r), 'and the upstream request was aborted, not completed')
    t.ok(r.bytes <= 10, `the upstream got at most the 10 bytes sent (${r.bytes})`)
  }
  await assertHealthy(t, slow)
})

// ------------------------------------------------------------------------- found along the way

// Regression (found by these tests, fixed): Node sends "100 Continue", then the Expect header is passed to undici, which throws NotSupportedError "expect header not supported": 502 upstream_error (curl sends Expect: 100-continue for large uploads)
t.test('Expect: 100-continue on an allowed POST is forwarded', async (t) => {
  const { ex, seen } = await hostile(t, post(`Origin: ${APP}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n`), { status: [200], upstream: 'at-most-one' })
  t.equal(ex.response?.status, 200)
  t.same(seen.map(desc), ['POST /process/text'])
})

// Regression (found by these tests, fixed): Node answers 417 Expectation Failed itself, with an empty body (not JSON, no x-request-id, no CORS headers)
t.test('Expect with an unknown expectation gets our JSON error', (t) => hostile(t, post(`Origin: ${APP}\r\nExpect: something-else\r\nContent-Length: 2\r\n`), { status: [400, 417] }))

// Regression (found by these tests, fixed): Node answers 400 itself with an empty body (not JSON)
t.test('an HTTP/1.1 request without Host gets our JSON 400', (t) => hostile(t, 'POST /process/text HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', { status: [400], code: ['bad_request'] }))

// Regression (found by these tests, fixed): fastify refuses the media type (FST_ERR_CTP_INVALID_MEDIA_TYPE, 415) and the error handler turns it into 500 internal_error, logged as "unexpected error"
t.test('a POST with a Content-Type fastify cannot parse is never a 5xx', async (t) => {
  for (const ct of ['', ';', 'json', 'application&json', 'foo/bar baz', 'text/\xe9']) {
    await t.test(JSON.stringify(ct), (t) =>
      hostile(t, `POST /process/text HTTP/1.1\r\n${H}Origin: ${APP}\r\nContent-Type: ${ct}\r\nContent-Length: 2\r\n\r\n{}`, { status: [200, 400], code: ['bad_request'], upstream: 'at-most-one' }))
  }
})

// ------------------------------------------------------------------------------------------- end

t.test('after all of it: the sidecar answers normally and the upstream never saw a forbidden request', async (t) => {
  await assertHealthy(t)
  await assertHealthy(t, slow)
  const forbidden = up.received.filter((r) => notPermitted(r.method, r.url) !== undefined)
  t.same(forbidden.map(desc), [], `none of the ${up.received.length} upstream requests is forbidden by the allowlist`)
})
