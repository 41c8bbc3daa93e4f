// The error catalogue (README, "What it does to each request"): every response the sidecar generates
// itself is JSON `{"error":{"code":"…","message":"…","requestId":"…"}}`, and upstream failures map to
// 502/504.
import t from 'tap'
import { BodyTooLargeError, ERRORS, errorBody, upstreamErrorCode, type ErrorCode } from '../sidecar/errors.ts'

/** An error as undici or Node raises it: a message and a `code`, optionally a `cause`. */
function coded (code: string, cause?: unknown): Error {
  const e = new Error(`failed with ${code}`, cause === undefined ? undefined : { cause }) as Error & { code: string }
  e.code = code
  return e
}

t.test('every catalogue entry has a 4xx or 5xx status and a message', async (t) => {
  const entries = Object.entries(ERRORS)
  t.ok(entries.length > 0)
  for (const [code, { status, message }] of entries) {
    t.match(code, /^[a-z]+(?:_[a-z]+)*$/, `${code} is a snake_case code`)
    t.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`)
    t.ok(typeof message === 'string' && message.length > 0 && message.endsWith('.'), `${code} has a sentence`)
  }
})

t.test('the catalogue gives the statuses the README names for each failure', async (t) => {
  const expected: Partial<Record<ErrorCode, number>> = {
    cors_origin_denied: 403,
    cors_preflight_denied: 403,
    not_found: 404,
    method_not_allowed: 405,
    payload_too_large: 413,
    upstream_unavailable: 502,
    upstream_error: 502,
    upstream_timeout: 504,
    bad_path: 400,
    bad_request: 400,
    internal_error: 500
  }
  for (const [code, status] of Object.entries(expected)) t.equal(ERRORS[code as ErrorCode].status, status, code)
})

t.test('errorBody is {"error":{"code","message","requestId"}} with the catalogue message', async (t) => {
  const text = errorBody('not_found', 'req-1')
  const body: unknown = JSON.parse(text)
  t.strictSame(body, { error: { code: 'not_found', message: ERRORS.not_found.message, requestId: 'req-1' } })
  t.strictSame(Object.keys((body as { error: object }).error), ['code', 'message', 'requestId'])
})

t.test('errorBody takes a more specific message when given one', async (t) => {
  t.strictSame(JSON.parse(errorBody('cors_origin_denied', 'r', 'Origin https://evil.example is not allowed.')), {
    error: { code: 'cors_origin_denied', message: 'Origin https://evil.example is not allowed.', requestId: 'r' }
  })
})

t.test('errorBody is valid JSON whatever the request id and message contain', async (t) => {
  const id = 'a"b\\c\n\u2028'
  const message = '</script> "quoted" \u0000'
  t.strictSame(JSON.parse(errorBody('bad_request', id, message)), { error: { code: 'bad_request', message, requestId: id } })
})

t.test('BodyTooLargeError is an Error with its own code and the limit in its message', async (t) => {
  const e = new BodyTooLargeError(1024)
  t.ok(e instanceof Error)
  t.equal(e.code, 'PAI_BODY_TOO_LARGE')
  t.match(e.message, /1024 bytes/)
})

t.test('a refused or unresolvable connection is upstream_unavailable', async (t) => {
  for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']) {
    t.equal(upstreamErrorCode(coded(code)), 'upstream_unavailable', code)
  }
})

t.test('connect, headers and body timeouts are upstream_timeout', async (t) => {
  for (const code of ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
    t.equal(upstreamErrorCode(coded(code)), 'upstream_timeout', code)
  }
})

t.test('a reset or closed connection is upstream_error', async (t) => {
  for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']) {
    t.equal(upstreamErrorCode(coded(code)), 'upstream_error', code)
  }
})

t.test('a wrapped error is mapped through its cause', async (t) => {
  t.equal(upstreamErrorCode(new Error('wrapped', { cause: coded('ENOTFOUND') })), 'upstream_unavailable')
  t.equal(upstreamErrorCode(new Error('wrapped', { cause: coded('UND_ERR_HEADERS_TIMEOUT') })), 'upstream_timeout')
  t.equal(upstreamErrorCode(new Error('wrapped', { cause: coded('UND_ERR_SOCKET') })), 'upstream_error')
})

t.test('a BodyTooLargeError anywhere in the cause chain is payload_too_large', async (t) => {
  const big = new BodyTooLargeError(10)
  t.equal(upstreamErrorCode(big), 'payload_too_large', 'itself')
  t.equal(upstreamErrorCode(new Error('a', { cause: new Error('b', { cause: big }) })), 'payload_too_large', 'wrapped twice')
  t.equal(upstreamErrorCode(new Error('a', { cause: new Error('b', { cause: new Error('c', { cause: big }) }) })), 'payload_too_large', 'wrapped three times')
})

t.test('an error with an unknown code, or none, is upstream_error', async (t) => {
  t.equal(upstreamErrorCode(coded('EWHATEVER')), 'upstream_error')
  t.equal(upstreamErrorCode(new Error('no code')), 'upstream_error')
  t.equal(upstreamErrorCode(new Error('unknown cause', { cause: coded('EWHATEVER') })), 'upstream_error')
  t.equal(upstreamErrorCode(new Error('non-error cause', { cause: 'ECONNREFUSED' })), 'upstream_error')
})

t.test('something that is not an Error is upstream_error', async (t) => {
  for (const value of [undefined, null, 'ECONNREFUSED', 42, { code: 'ECONNREFUSED' }]) {
    t.equal(upstreamErrorCode(value), 'upstream_error', String(value))
  }
})

t.test('a cyclic cause chain ends in upstream_error instead of looping', async (t) => {
  const a = new Error('a')
  const b = new Error('b', { cause: a })
  ;(a as { cause?: unknown }).cause = b
  t.equal(upstreamErrorCode(a), 'upstream_error')
})
