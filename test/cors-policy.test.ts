// Compiling a `cors` block into an immutable matcher, and which allowlist entry (if any) covers a
// request's Origin. README, "CORS, precisely": exact, subdomain wildcard (one or more labels, never the
// apex), any port, or `*`; byte-exact on the serialized origin, never normalised.
import t from 'tap'
import { compilePolicy, headerList, matchOrigin, type CorsPolicy } from '../sidecar/cors/policy.ts'
import { parseRequestOrigin } from '../sidecar/cors/origin.ts'
import { decidePreflight } from '../sidecar/cors/decide.ts'
import { settings } from './fixtures/cors.ts'

/** The allowlist entry covering this Origin header value; undefined when it is not a serialized origin. */
function match (policy: CorsPolicy, origin: string): string | undefined {
  const parsed = parseRequestOrigin(origin)
  return parsed === undefined ? undefined : matchOrigin(policy, origin, parsed)
}

t.test('headerList', async (t) => {
  t.test('lists header names lower-case, sorted and de-duplicated', async (t) => {
    const table: [string[], string[]][] = [
      [[], []],
      [['Content-Type'], ['content-type']],
      [['X-Request-Id', 'content-type', 'x-request-id', 'Accept-Language'], ['accept-language', 'content-type', 'x-request-id']],
      [['*', 'Authorization'], ['*', 'authorization']]
    ]
    for (const [names, want] of table) t.same(headerList(names), want, JSON.stringify(names))
  })

  t.test('does not modify its input', async (t) => {
    const names = ['X-B', 'x-a']
    headerList(names)
    t.same(names, ['X-B', 'x-a'])
  })
})

t.test('compilePolicy', async (t) => {
  t.test('an invalid origin entry is an error, never a fallback to something more permissive', async (t) => {
    for (const entry of ['null', 'https://*.com', 'https://app.example.com/', 'https://App.example.com', 'https://app.example.com:443']) {
      t.throws(() => compilePolicy(settings({ allowedOrigins: ['https://app.example.com', entry] })), { message: new RegExp(`cors.allowedOrigins: "${entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`) }, entry)
    }
  })

  t.test('sorts entries into exact origins, patterns and "*"', async (t) => {
    const p = compilePolicy(settings({ allowedOrigins: ['https://app.example.com', 'https://*.example.com', 'http://localhost:*', 'http://[::1]:3000'] }))
    t.same([...p.exactOrigins].sort(), ['http://[::1]:3000', 'https://app.example.com'])
    t.same(p.patterns.map((x) => x.entry), ['https://*.example.com', 'http://localhost:*'])
    t.equal(p.anyOrigin, false)
    t.equal(compilePolicy(settings({ allowedOrigins: ['*'] })).anyOrigin, true)
  })

  t.test('allowed methods are sent de-duplicated, as written (methods are case-sensitive)', async (t) => {
    const table: [string[], string][] = [
      [['POST'], 'POST'],
      [['POST', 'PUT', 'POST'], 'POST, PUT'],
      [['PATCH', 'patch'], 'PATCH, patch'],
      [['*'], '*']
    ]
    for (const [methods, want] of table) t.equal(compilePolicy(settings({ allowedMethods: methods })).allowMethodsValue, want, JSON.stringify(methods))
  })

  t.test('allowed and exposed headers are sent lower-case, sorted, de-duplicated, and omitted when empty', async (t) => {
    const p = compilePolicy(settings({ allowedHeaders: ['X-Request-Id', 'content-type', 'x-request-id'], exposedHeaders: ['X-Request-Id', 'Content-Length', 'x-request-id'] }))
    t.equal(p.allowHeadersValue, 'content-type, x-request-id')
    t.equal(p.exposeHeadersValue, 'content-length, x-request-id')
    t.ok(p.headers.has('x-request-id'))
    t.notOk(p.headers.has('X-Request-Id'), 'the lookup set is lower-case')
    const none = compilePolicy(settings({ allowedHeaders: [], exposedHeaders: [] }))
    t.equal(none.allowHeadersValue, undefined)
    t.equal(none.exposeHeadersValue, undefined)
  })

  t.test('Access-Control-Max-Age is only prepared when maxAge is configured', async (t) => {
    const table: [number | undefined, string | undefined][] = [[undefined, undefined], [0, '0'], [600, '600'], [86400, '86400']]
    for (const [maxAge, want] of table) t.equal(compilePolicy(settings({ maxAge })).maxAgeValue, want, String(maxAge))
  })

  t.test('"*" for every origin without credentials is static', async (t) => {
    const table: [string[], boolean, boolean][] = [
      [['*'], false, true],
      [['https://app.example.com', '*'], false, true],
      [['*'], true, false],
      [['https://app.example.com'], false, false],
      [['https://*.example.com'], false, false]
    ]
    for (const [allowedOrigins, allowCredentials, want] of table) {
      t.equal(compilePolicy(settings({ allowedOrigins, allowCredentials })).staticAny, want, `${JSON.stringify(allowedOrigins)} credentials=${allowCredentials}`)
    }
  })

  t.test('a preflight varies on Origin and the request method and headers, plus private network when enabled', async (t) => {
    t.equal(compilePolicy(settings()).preflightVary, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
    t.equal(compilePolicy(settings({ allowPrivateNetwork: true })).preflightVary,
      'Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network')
  })

  t.test('a compiled policy is an immutable snapshot', async (t) => {
    const p = compilePolicy(settings())
    t.ok(Object.isFrozen(p), 'policy')
    t.ok(Object.isFrozen(p.settings), 'settings')
    t.ok(Object.isFrozen(p.patterns), 'patterns')
  })

  t.test('changing the settings after compiling does not change the decisions', async (t) => {
    const s = settings()
    const p = compilePolicy(s)
    s.allowedOrigins.push('*')
    s.allowedMethods.push('DELETE')
    s.allowedHeaders.push('x-evil')
    s.allowCredentials = true
    s.allowPrivateNetwork = true
    s.maxAge = 86400
    t.equal(match(p, 'https://evil.net'), undefined)
    const d = decidePreflight(p, { method: 'OPTIONS', origin: 'https://app.example.com', requestMethod: 'DELETE', requestHeaders: 'x-evil', requestPrivateNetwork: 'true' })
    t.same(d.failures.map((f) => f.reason), ['method_not_allowed', 'header_not_allowed', 'private_network_not_allowed'])
    const ok = decidePreflight(p, { method: 'OPTIONS', origin: 'https://app.example.com', requestMethod: 'POST' })
    t.same(ok.headers, { 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'content-type, x-request-id' })
  })
})

t.test('matchOrigin', async (t) => {
  const policy = compilePolicy(settings())

  t.test('an exact entry matches that origin, byte for byte', async (t) => {
    t.equal(match(policy, 'https://app.example.com'), 'https://app.example.com')
    const p = compilePolicy(settings({ allowedOrigins: ['https://app.example.com:8443', 'http://[::1]:3000'] }))
    t.equal(match(p, 'https://app.example.com:8443'), 'https://app.example.com:8443')
    t.equal(match(p, 'http://[::1]:3000'), 'http://[::1]:3000')
    t.equal(match(p, 'https://app.example.com'), undefined, 'another port is another origin')
    t.equal(match(p, 'http://[::1]'), undefined)
  })

  t.test('a wildcard matches one or more labels in front of the domain', async (t) => {
    for (const origin of ['https://a.example.com', 'https://a.b.example.com', 'https://api-2.eu.example.com']) {
      t.equal(match(policy, origin), 'https://*.example.com', origin)
    }
  })

  t.test('a wildcard never matches the apex domain', async (t) => {
    t.equal(match(compilePolicy(settings({ allowedOrigins: ['https://*.example.com'] })), 'https://example.com'), undefined)
  })

  t.test('a wildcard never matches a look-alike domain', async (t) => {
    for (const origin of ['https://evilexample.com', 'https://a.evilexample.com', 'https://evil-example.com', 'https://a.example.com.evil.net', 'https://app.example.com.evil.net']) {
      t.equal(match(policy, origin), undefined, origin)
    }
  })

  t.test('a wildcard never matches another scheme, another port or upper case', async (t) => {
    for (const origin of ['http://a.example.com', 'https://a.example.com:8443', 'https://A.example.com', 'https://a.EXAMPLE.com', 'wss://a.example.com']) {
      t.equal(match(policy, origin), undefined, origin)
    }
  })

  t.test('"http://localhost:*" matches any port and no port', async (t) => {
    for (const origin of ['http://localhost', 'http://localhost:3000', 'http://localhost:5173', 'http://localhost:8080']) {
      t.equal(match(policy, origin), 'http://localhost:*', origin)
    }
  })

  t.test('"http://localhost:*" matches no other host or scheme', async (t) => {
    for (const origin of ['http://localhost.evil.com', 'http://localhost.evil.com:3000', 'https://localhost:3000', 'https://localhost', 'http://LOCALHOST:3000', 'http://127.0.0.1:3000', 'http://app.localhost:3000']) {
      t.equal(match(policy, origin), undefined, origin)
    }
  })

  t.test('"http://localhost:*" never matches the default port written out', async (t) => {
    t.equal(match(policy, 'http://localhost:80'), undefined)
  })

  t.test('"*" matches every serialized origin', async (t) => {
    const any = compilePolicy(settings({ allowedOrigins: ['*'] }))
    for (const origin of ['https://evil.net', 'http://localhost:3000', 'http://[::1]:3000', 'https://a.b.c.example.org:8443']) {
      t.equal(match(any, origin), '*', origin)
    }
  })

  t.test('exact entries win over patterns, and patterns over "*"', async (t) => {
    const p = compilePolicy(settings({ allowedOrigins: ['*', 'https://*.example.com', 'https://app.example.com'] }))
    t.equal(match(p, 'https://app.example.com'), 'https://app.example.com')
    t.equal(match(p, 'https://a.example.com'), 'https://*.example.com')
    t.equal(match(p, 'https://evil.net'), '*')
  })

  t.test('a written-out default port, trailing slash, path, upper case or repeated Origin never match', async (t) => {
    const table = [
      'https://app.example.com:443',
      'https://app.example.com/',
      'https://app.example.com/app',
      'https://app.example.com?x',
      'https://APP.example.com',
      'HTTPS://app.example.com',
      'https://app.example.com, https://app.example.com',
      'https://app.example.com, https://evil.net',
      'https://app.example.com.',
      ' https://app.example.com',
      'https://app.example.com '
    ]
    for (const origin of table) t.equal(match(policy, origin), undefined, JSON.stringify(origin))
  })

  t.test('an origin outside the allowlist matches nothing', async (t) => {
    for (const origin of ['https://evil.net', 'https://example.org', 'https://app.example.org']) {
      t.equal(match(policy, origin), undefined, origin)
    }
  })
})

t.test('an empty allowedMethods sends no Access-Control-Allow-Methods (safelisted methods still pass)', async (t) => {
  const p = compilePolicy(settings({ allowedMethods: [] }))
  t.equal(p.allowMethodsValue, undefined)
  const d = decidePreflight(p, { method: 'OPTIONS', origin: 'https://app.example.com', requestMethod: 'POST' })
  t.equal(d.outcome, 'allowed')
  t.notOk('access-control-allow-methods' in d.headers)
})
