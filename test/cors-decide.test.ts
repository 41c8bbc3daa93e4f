// The CORS decision, read against WHATWG Fetch ("CORS protocol", "CORS-preflight fetch", "CORS protocol
// and HTTP caches") and the README's "CORS, precisely": what a preflight and an actual request get back.
import t from 'tap'
import { compilePolicy, type CorsSettings } from '../sidecar/cors/policy.ts'
import { settings as base } from './fixtures/cors.ts'
import {
  decideActual, decidePreflight, isPreflight, MAX_REQUEST_HEADERS, parseRequestHeaders,
  type CorsDecision, type RequestFacts
} from '../sidecar/cors/decide.ts'

// PUT is listed here so that method cases have a non-safelisted method that is allowed.
const policy = (overrides: Partial<CorsSettings> = {}) => compilePolicy(base({ allowedMethods: ['POST', 'PUT'], ...overrides }))

function preflight (overrides: Partial<CorsSettings>, facts: Partial<RequestFacts>): CorsDecision {
  return decidePreflight(policy(overrides), { method: 'OPTIONS', origin: 'https://app.example.com', requestMethod: 'POST', ...facts })
}

function actual (overrides: Partial<CorsSettings>, facts: Partial<RequestFacts>): CorsDecision {
  return decideActual(policy(overrides), { method: 'POST', origin: 'https://app.example.com', ...facts })
}

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'
const accessControl = (headers: Record<string, string>) => Object.keys(headers).filter((h) => /^access-control-/i.test(h))

t.test('parseRequestHeaders', async (t) => {
  t.test('no Access-Control-Request-Headers means no headers', async (t) => {
    t.same(parseRequestHeaders(undefined), { ok: true, names: [] })
  })

  t.test('is lenient about case, whitespace, duplicates, empty items and joined header lines', async (t) => {
    const table: [string, string[]][] = [
      ['', []],
      [',', []],
      [' , ,\t,', []],
      ['content-type', ['content-type']],
      ['Content-Type', ['content-type']],
      ['CONTENT-TYPE,content-type,Content-Type', ['content-type']],
      ['content-type,x-request-id', ['content-type', 'x-request-id']],
      ['x-request-id, content-type', ['content-type', 'x-request-id']],
      ['  x-request-id  ,   content-type  ', ['content-type', 'x-request-id']],
      ['\tx-request-id\t,\tcontent-type\t', ['content-type', 'x-request-id']],
      ['content-type,,x-request-id,', ['content-type', 'x-request-id']],
      [',content-type', ['content-type']],
      // Two header lines `content-type, x-a` and `X-B` joined with "," as Node does for this header.
      ['content-type, x-a,X-B', ['content-type', 'x-a', 'x-b']],
      ["x-!#$%&'*+-.^_`|~09az", ["x-!#$%&'*+-.^_`|~09az"]]
    ]
    for (const [value, names] of table) t.same(parseRequestHeaders(value), { ok: true, names }, JSON.stringify(value))
  })

  t.test('refuses an item that is not a header name', async (t) => {
    for (const value of ['content type', 'content-type, x a', 'x-a;x-b', 'x-a:1', '"x-a"', 'x-ä', 'x-a\u0000', '(x)', 'x/y']) {
      const r = parseRequestHeaders(value)
      t.equal(r.ok, false, JSON.stringify(value))
      if (!r.ok) t.match(r.detail, /is not a header name/)
    }
  })

  t.test(`accepts at most ${MAX_REQUEST_HEADERS} distinct names`, async (t) => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `x-h${String(i).padStart(3, '0')}`)
    const max = parseRequestHeaders(names(MAX_REQUEST_HEADERS).join(','))
    t.equal(max.ok, true, `${MAX_REQUEST_HEADERS} names`)
    if (max.ok) t.equal(max.names.length, MAX_REQUEST_HEADERS)
    t.equal(parseRequestHeaders([...names(MAX_REQUEST_HEADERS), ...names(MAX_REQUEST_HEADERS)].join(', ')).ok, true, 'duplicates do not count')
    const over = parseRequestHeaders(names(MAX_REQUEST_HEADERS + 1).join(','))
    t.equal(over.ok, false, `${MAX_REQUEST_HEADERS + 1} names`)
    if (!over.ok) t.match(over.detail, `more than ${MAX_REQUEST_HEADERS}`)
  })
})

t.test('isPreflight', async (t) => {
  t.test('a preflight is OPTIONS with both Origin and Access-Control-Request-Method', async (t) => {
    const table: [string, string | undefined, string | undefined, boolean][] = [
      ['OPTIONS', 'https://app.example.com', 'POST', true],
      ['OPTIONS', 'null', 'POST', true],
      ['OPTIONS', 'https://app.example.com', '', true],
      ['OPTIONS', undefined, 'POST', false],
      ['OPTIONS', 'https://app.example.com', undefined, false],
      ['OPTIONS', undefined, undefined, false],
      ['POST', 'https://app.example.com', 'POST', false],
      ['options', 'https://app.example.com', 'POST', false]
    ]
    for (const [method, origin, requestMethod, want] of table) {
      t.equal(isPreflight(method, origin, requestMethod), want, `${method} origin=${origin} acrm=${requestMethod}`)
    }
  })
})

t.test('decidePreflight', async (t) => {
  t.test('an allowed preflight gets exactly the origin, methods and headers', async (t) => {
    const d = preflight({}, { requestHeaders: 'Content-Type' })
    t.same(d, {
      preflight: true,
      outcome: 'allowed',
      reason: 'allowed',
      failures: [],
      matched: 'https://app.example.com',
      headers: {
        'access-control-allow-origin': 'https://app.example.com',
        'access-control-allow-methods': 'POST, PUT',
        'access-control-allow-headers': 'content-type, x-request-id'
      },
      vary: PREFLIGHT_VARY
    })
  })

  t.test('Access-Control-Allow-Origin is the request origin, never the pattern or a list', async (t) => {
    const table: [string, string][] = [
      ['https://a.b.example.com', 'https://*.example.com'],
      ['http://localhost:5173', 'http://localhost:*'],
      ['http://localhost', 'http://localhost:*']
    ]
    for (const [origin, entry] of table) {
      const d = preflight({}, { origin })
      t.equal(d.headers['access-control-allow-origin'], origin, origin)
      t.equal(d.matched, entry, `${origin} matched ${entry}`)
    }
  })

  t.test('allowed headers are listed lower-case, sorted and de-duplicated', async (t) => {
    const d = preflight({ allowedHeaders: ['X-Request-Id', 'content-type', 'x-request-id', 'Accept-Language'] }, { requestHeaders: 'x-request-id' })
    t.equal(d.headers['access-control-allow-headers'], 'accept-language, content-type, x-request-id')
  })

  t.test('no allowed headers configured means no Access-Control-Allow-Headers', async (t) => {
    const d = preflight({ allowedHeaders: [] }, {})
    t.equal(d.outcome, 'allowed')
    t.notOk('access-control-allow-headers' in d.headers)
  })

  t.test('Access-Control-Max-Age is sent only when maxAge is configured', async (t) => {
    t.notOk('access-control-max-age' in preflight({}, {}).headers, 'not configured')
    t.equal(preflight({ maxAge: 600 }, {}).headers['access-control-max-age'], '600')
    t.equal(preflight({ maxAge: 0 }, {}).headers['access-control-max-age'], '0')
  })

  t.test('Access-Control-Allow-Credentials is sent only with credentials', async (t) => {
    t.notOk('access-control-allow-credentials' in preflight({}, {}).headers, 'credentials off')
    t.equal(preflight({ allowCredentials: true }, {}).headers['access-control-allow-credentials'], 'true')
  })

  t.test('a denied preflight carries no Access-Control-* header and says why', async (t) => {
    const table: [string, Partial<CorsSettings>, Partial<RequestFacts>, string][] = [
      ['origin outside the allowlist', {}, { origin: 'https://evil.net' }, 'origin_not_allowed'],
      ['look-alike origin', {}, { origin: 'https://a.example.com.evil.net' }, 'origin_not_allowed'],
      ['null origin', {}, { origin: 'null' }, 'null_origin'],
      ['null origin with "*"', { allowedOrigins: ['*'] }, { origin: 'null' }, 'null_origin'],
      ['two Origin values', {}, { origin: 'https://app.example.com, https://app.example.com' }, 'invalid_origin'],
      ['trailing slash', {}, { origin: 'https://app.example.com/' }, 'invalid_origin'],
      ['no Origin at all', {}, { origin: undefined }, 'invalid_origin'],
      ['method not allowed', {}, { requestMethod: 'DELETE' }, 'method_not_allowed'],
      ['method in the wrong case', { allowedMethods: ['PATCH'] }, { requestMethod: 'patch' }, 'method_not_allowed'],
      ['method that is not a token', {}, { requestMethod: 'PO ST' }, 'method_not_allowed'],
      ['empty method', {}, { requestMethod: '' }, 'method_not_allowed'],
      ['no Access-Control-Request-Method', {}, { requestMethod: undefined }, 'method_not_allowed'],
      ['header not allowed', {}, { requestHeaders: 'content-type, x-secret' }, 'header_not_allowed'],
      ['authorization under "*"', { allowedHeaders: ['*'] }, { requestHeaders: 'authorization' }, 'header_not_allowed'],
      ['header list that does not parse', {}, { requestHeaders: 'content type' }, 'invalid_request_headers'],
      ['private network not enabled', {}, { requestPrivateNetwork: 'true' }, 'private_network_not_allowed']
    ]
    for (const [name, overrides, facts, reason] of table) {
      const d = preflight(overrides, facts)
      t.equal(d.outcome, 'denied', `${name}: denied`)
      t.equal(d.reason, reason, `${name}: ${reason}`)
      t.same(d.headers, {}, `${name}: no Access-Control-* headers`)
      t.equal(d.failures[0]?.reason, reason, `${name}: first failure`)
      t.equal(d.vary, PREFLIGHT_VARY, `${name}: still varies`)
    }
  })

  t.test('a denied preflight lists every failing check in the order a browser meets them', async (t) => {
    const d = preflight({}, { origin: 'https://evil.net', requestMethod: 'DELETE', requestHeaders: 'x-b, x-a', requestPrivateNetwork: 'true' })
    t.same(d.failures.map((f) => f.reason), ['origin_not_allowed', 'method_not_allowed', 'header_not_allowed', 'header_not_allowed', 'private_network_not_allowed'])
    t.same(d.failures.filter((f) => f.reason === 'header_not_allowed').map((f) => f.detail), ['x-a is not in allowedHeaders', 'x-b is not in allowedHeaders'])
    t.equal(d.reason, 'origin_not_allowed')
    t.equal(d.matched, undefined)
  })

  t.test('a preflight denied for its method or headers still names the matching entry', async (t) => {
    t.equal(preflight({}, { origin: 'https://a.example.com', requestMethod: 'DELETE' }).matched, 'https://*.example.com')
  })

  t.test('methods are case-sensitive', async (t) => {
    const table: [string[], string, boolean][] = [
      [['PATCH'], 'PATCH', true],
      [['PATCH'], 'patch', false],
      [['patch'], 'patch', true],
      [['patch'], 'PATCH', false],
      [['PUT'], 'put', false],
      [['POST'], 'post', false],
      [['POST'], 'get', false]
    ]
    for (const [allowedMethods, requestMethod, allowed] of table) {
      t.equal(preflight({ allowedMethods }, { requestMethod }).outcome, allowed ? 'allowed' : 'denied', `${requestMethod} with ${JSON.stringify(allowedMethods)}`)
    }
  })

  t.test('the CORS-safelisted methods GET, HEAD and POST need no listing', async (t) => {
    for (const requestMethod of ['GET', 'HEAD', 'POST']) {
      const d = preflight({ allowedMethods: ['PUT'] }, { requestMethod, requestHeaders: 'content-type' })
      t.equal(d.outcome, 'allowed', requestMethod)
      t.equal(d.headers['access-control-allow-methods'], 'PUT', `${requestMethod}: the configured list is sent`)
    }
    t.equal(preflight({ allowedMethods: ['PUT'] }, { requestMethod: 'DELETE' }).outcome, 'denied', 'DELETE is not safelisted')
  })

  t.test('"*" methods and headers are sent literally without credentials', async (t) => {
    const d = preflight({ allowedMethods: ['*'], allowedHeaders: ['*'] }, { requestMethod: 'DELETE', requestHeaders: 'x-custom, content-type' })
    t.equal(d.outcome, 'allowed')
    t.equal(d.headers['access-control-allow-methods'], '*')
    t.equal(d.headers['access-control-allow-headers'], '*')
  })

  t.test('"*" methods and headers echo the request with credentials', async (t) => {
    const creds = { allowedMethods: ['*'], allowedHeaders: ['*'], allowCredentials: true }
    const d = preflight(creds, { requestMethod: 'DELETE', requestHeaders: 'X-Custom, content-type,x-custom' })
    t.same(d.headers, {
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'DELETE',
      'access-control-allow-headers': 'content-type, x-custom'
    })
    const bare = preflight(creds, { requestMethod: 'PATCH' })
    t.equal(bare.headers['access-control-allow-methods'], 'PATCH')
    t.notOk('access-control-allow-headers' in bare.headers, 'no headers requested, none echoed')
  })

  t.test('"*" never covers Authorization', async (t) => {
    for (const allowCredentials of [false, true]) {
      for (const requestHeaders of ['authorization', 'Authorization', 'content-type, AUTHORIZATION']) {
        const d = preflight({ allowedHeaders: ['*'], allowCredentials }, { requestHeaders })
        t.equal(d.reason, 'header_not_allowed', `${requestHeaders} credentials=${allowCredentials}`)
        t.same(d.headers, {})
        t.match(d.failures[0]?.detail, /authorization is not covered by "\*"/)
      }
    }
  })

  t.test('Authorization is allowed when listed explicitly', async (t) => {
    const table: [string[], boolean, string][] = [
      [['Authorization'], false, 'authorization'],
      [['*', 'Authorization'], false, '*, authorization'],
      [['*', 'authorization'], true, 'authorization, content-type']
    ]
    for (const [allowedHeaders, allowCredentials, want] of table) {
      const d = preflight({ allowedHeaders, allowCredentials }, { requestHeaders: allowedHeaders.length > 1 ? 'Authorization, Content-Type' : 'Authorization' })
      t.equal(d.outcome, 'allowed', JSON.stringify(allowedHeaders))
      t.equal(d.headers['access-control-allow-headers'], want, JSON.stringify(allowedHeaders))
    }
  })

  t.test('Access-Control-Request-Headers is parsed leniently', async (t) => {
    const table = [
      'Content-Type',
      'CONTENT-TYPE, X-Request-Id',
      '  content-type  ,\tx-request-id\t',
      'content-type,content-type,Content-Type',
      'content-type,,x-request-id,',
      ',',
      '',
      'content-type,x-request-id' // two header lines joined with ","
    ]
    for (const requestHeaders of table) {
      const d = preflight({}, { requestHeaders })
      t.equal(d.outcome, 'allowed', JSON.stringify(requestHeaders))
      t.equal(d.headers['access-control-allow-headers'], 'content-type, x-request-id', JSON.stringify(requestHeaders))
    }
  })

  t.test('Access-Control-Request-Headers is bounded', async (t) => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}`).join(', ')
    t.equal(preflight({ allowedHeaders: ['*'] }, { requestHeaders: names(MAX_REQUEST_HEADERS) }).outcome, 'allowed', `${MAX_REQUEST_HEADERS} names`)
    const over = preflight({ allowedHeaders: ['*'] }, { requestHeaders: names(MAX_REQUEST_HEADERS + 1) })
    t.equal(over.reason, 'invalid_request_headers', `${MAX_REQUEST_HEADERS + 1} names`)
    t.same(over.headers, {})
  })

  t.test('an invalid header name denies the preflight', async (t) => {
    for (const requestHeaders of ['content type', 'content-type, x;y', 'x-a:b']) {
      const d = preflight({ allowedHeaders: ['*'] }, { requestHeaders })
      t.equal(d.reason, 'invalid_request_headers', JSON.stringify(requestHeaders))
      t.same(d.headers, {})
    }
  })

  t.test('Private Network Access is opt-in', async (t) => {
    const off = preflight({}, { requestPrivateNetwork: 'true' })
    t.equal(off.reason, 'private_network_not_allowed')
    t.same(off.headers, {})
    const on = preflight({ allowPrivateNetwork: true }, { requestPrivateNetwork: 'true' })
    t.equal(on.outcome, 'allowed')
    t.equal(on.headers['access-control-allow-private-network'], 'true')
  })

  t.test('Access-Control-Allow-Private-Network answers only a private network request', async (t) => {
    for (const requestPrivateNetwork of [undefined, 'false', '']) {
      const d = preflight({ allowPrivateNetwork: true }, { requestPrivateNetwork })
      t.equal(d.outcome, 'allowed', String(requestPrivateNetwork))
      t.notOk('access-control-allow-private-network' in d.headers, String(requestPrivateNetwork))
    }
    t.equal(preflight({}, { requestPrivateNetwork: 'false' }).outcome, 'allowed', 'not a private network request')
  })

  t.test('a preflight varies on Origin, Access-Control-Request-Method and Access-Control-Request-Headers', async (t) => {
    t.equal(preflight({}, {}).vary, PREFLIGHT_VARY)
    t.equal(preflight({ allowedOrigins: ['*'] }, {}).vary, PREFLIGHT_VARY, 'even for a static "*"')
    t.equal(preflight({}, { origin: 'https://evil.net' }).vary, PREFLIGHT_VARY, 'denied too')
  })

  t.test('with Private Network Access enabled a preflight also varies on Access-Control-Request-Private-Network', async (t) => {
    t.equal(preflight({ allowPrivateNetwork: true }, {}).vary, `${PREFLIGHT_VARY}, Access-Control-Request-Private-Network`)
  })

  t.test('a "*" origin policy answers "*" without credentials', async (t) => {
    const d = preflight({ allowedOrigins: ['*'] }, { origin: 'https://anyone.net' })
    t.equal(d.headers['access-control-allow-origin'], '*')
    t.equal(d.matched, '*')
  })
})

t.test('decideActual', async (t) => {
  t.test('a request without Origin is not a CORS request', async (t) => {
    t.same(actual({}, { origin: undefined }), {
      preflight: false, outcome: 'none', reason: 'no_origin', failures: [], matched: undefined, headers: {}, vary: 'Origin'
    })
  })

  t.test('a static "*" policy does not vary on Origin, and says "*" even without Origin (Fetch, CORS and HTTP caches)', async (t) => {
    const none = actual({ allowedOrigins: ['*'] }, { origin: undefined })
    t.equal(none.vary, undefined)
    t.same(none.headers, { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'x-request-id' })
    t.equal(actual({ allowedOrigins: ['*'] }, {}).vary, undefined)
    t.equal(actual({ allowedOrigins: ['*'] }, { origin: 'null' }).vary, 'Origin', 'a refusal depends on Origin')
    t.equal(actual({ allowedOrigins: ['*'], allowCredentials: true }, { origin: undefined }).vary, 'Origin', '"*" with credentials echoes, so it varies')
  })

  t.test('an allowed request gets the origin and the exposed headers', async (t) => {
    t.same(actual({}, {}), {
      preflight: false,
      outcome: 'allowed',
      reason: 'allowed',
      failures: [],
      matched: 'https://app.example.com',
      headers: { 'access-control-allow-origin': 'https://app.example.com', 'access-control-expose-headers': 'x-request-id' },
      vary: 'Origin'
    })
  })

  t.test('exposed headers are listed lower-case, sorted and de-duplicated, or not at all', async (t) => {
    t.equal(actual({ exposedHeaders: ['X-Request-Id', 'Content-Length', 'x-request-id'] }, {}).headers['access-control-expose-headers'], 'content-length, x-request-id')
    t.same(actual({ exposedHeaders: [] }, {}).headers, { 'access-control-allow-origin': 'https://app.example.com' })
  })

  t.test('an allowed request gets Access-Control-Allow-Credentials only with credentials', async (t) => {
    t.same(actual({ allowCredentials: true }, { origin: 'http://localhost:3000' }).headers, {
      'access-control-allow-origin': 'http://localhost:3000',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id'
    })
    t.notOk('access-control-allow-credentials' in actual({}, {}).headers)
    t.same(actual({ allowCredentials: true }, { origin: 'https://evil.net' }).headers, {}, 'never for a denied origin')
  })

  t.test('a "*" policy answers "*"', async (t) => {
    const any = actual({ allowedOrigins: ['*'] }, { origin: 'https://anyone.net' })
    t.equal(any.headers['access-control-allow-origin'], '*')
    t.equal(any.matched, '*')
    const mixed = actual({ allowedOrigins: ['https://app.example.com', '*'] }, {})
    t.equal(mixed.headers['access-control-allow-origin'], '*', 'static "*" even when an exact entry matched')
    t.equal(mixed.matched, 'https://app.example.com')
  })

  t.test('a same-origin request is not a CORS failure', async (t) => {
    const d = actual({}, { origin: 'https://pai.internal.net:8000', selfOrigin: 'https://pai.internal.net:8000' })
    t.same(d, { preflight: false, outcome: 'same_origin', reason: 'same_origin', failures: [], matched: undefined, headers: {}, vary: 'Origin' })
  })

  t.test('an allowed origin that is also the own origin is simply allowed', async (t) => {
    t.equal(actual({}, { selfOrigin: 'https://app.example.com' }).outcome, 'allowed')
  })

  t.test('a request from another origin is denied with no CORS headers and says why', async (t) => {
    const table: [string, Partial<CorsSettings>, Partial<RequestFacts>, string][] = [
      ['origin outside the allowlist', {}, { origin: 'https://evil.net' }, 'origin_not_allowed'],
      ['look-alike of the own origin', {}, { origin: 'https://evil.net', selfOrigin: 'https://pai.internal.net' }, 'origin_not_allowed'],
      ['apex of a wildcard', {}, { origin: 'https://example.com' }, 'origin_not_allowed'],
      ['null origin', {}, { origin: 'null' }, 'null_origin'],
      ['null origin with "*"', { allowedOrigins: ['*'] }, { origin: 'null' }, 'null_origin'],
      ['two Origin values', {}, { origin: 'https://app.example.com, https://evil.net' }, 'invalid_origin'],
      ['two Origin values with "*"', { allowedOrigins: ['*'] }, { origin: 'https://a.net, https://b.net' }, 'invalid_origin'],
      ['a path', {}, { origin: 'https://app.example.com/app' }, 'invalid_origin'],
      ['empty Origin', {}, { origin: '' }, 'invalid_origin']
    ]
    for (const [name, overrides, facts, reason] of table) {
      const d = actual(overrides, facts)
      t.equal(d.outcome, 'denied', `${name}: denied`)
      t.equal(d.reason, reason, `${name}: ${reason}`)
      t.same(d.failures.map((f) => f.reason), [reason], `${name}: one failure`)
      t.same(accessControl(d.headers), [], `${name}: no Access-Control-* headers`)
      t.equal(d.matched, undefined, `${name}: nothing matched`)
    }
  })

  t.test('a denied request still varies on Origin', async (t) => {
    t.equal(actual({}, { origin: 'https://evil.net' }).vary, 'Origin')
  })

  t.test('matched names the allowlist entry, never the raw origin', async (t) => {
    const table: [string, string][] = [
      ['https://app.example.com', 'https://app.example.com'],
      ['https://tenant-42.example.com', 'https://*.example.com'],
      ['https://a.b.example.com', 'https://*.example.com'],
      ['http://localhost:3000', 'http://localhost:*'],
      ['http://localhost', 'http://localhost:*']
    ]
    for (const [origin, entry] of table) {
      const d = actual({}, { origin })
      t.equal(d.matched, entry, origin)
      t.equal(d.headers['access-control-allow-origin'], origin, `${origin}: echoed`)
    }
  })

  t.test('an actual request is never answered with preflight headers', async (t) => {
    const d = actual({ maxAge: 600, allowPrivateNetwork: true, allowCredentials: true }, { requestMethod: 'PUT', requestHeaders: 'x-a', requestPrivateNetwork: 'true' })
    t.same(accessControl(d.headers).sort(), ['access-control-allow-credentials', 'access-control-allow-origin', 'access-control-expose-headers'])
  })
})
