// The route allowlist (docs/ARCHITECTURE.md, "The request path", step 4.5): only configured path + method
// pairs are forwarded; a path ending in "/" is a prefix; methods are exact; anything else is 404/405
// from the sidecar; a path the upstream could resolve differently is refused rather than normalised.
import t from 'tap'
import { DEFAULT_ROUTES } from '../sidecar/config/schema.ts'
import { compileRoutes, matchRoute } from '../sidecar/routes.ts'

const defaults = compileRoutes(DEFAULT_ROUTES)

t.test('an exact route matches its path and method', async (t) => {
  t.strictSame(matchRoute(defaults, '/process/text', 'POST'), { kind: 'ok', route: '/process/text' })
  t.strictSame(matchRoute(defaults, '/v3/process/text', 'POST'), { kind: 'ok', route: '/v3/process/text' })
})

t.test('an exact route does not match longer or shorter paths', async (t) => {
  for (const path of ['/process/text/', '/process/text/x', '/process/textual', '/process', '/v3/process/text/extra']) {
    t.strictSame(matchRoute(defaults, path, 'POST'), { kind: 'not_found' }, path)
  }
})

t.test('a route ending in "/" matches every path under it', async (t) => {
  const table = compileRoutes([{ path: '/files/', methods: ['POST'] }])
  for (const path of ['/files/', '/files/a', '/files/a/b.txt']) {
    t.strictSame(matchRoute(table, path, 'POST'), { kind: 'ok', route: '/files/' }, path)
  }
  t.strictSame(matchRoute(table, '/files', 'POST'), { kind: 'not_found' }, 'the prefix without its slash is another path')
  t.strictSame(matchRoute(table, '/filesystem', 'POST'), { kind: 'not_found' })
})

t.test('the longest matching prefix wins, whatever the order of the routes', async (t) => {
  const routes = [{ path: '/api/', methods: ['GET'] }, { path: '/api/v2/', methods: ['POST'] }, { path: '/api/v2/admin/', methods: ['DELETE'] }]
  for (const table of [compileRoutes(routes), compileRoutes([...routes].reverse())]) {
    t.strictSame(matchRoute(table, '/api/v2/x', 'POST'), { kind: 'ok', route: '/api/v2/' })
    t.strictSame(matchRoute(table, '/api/v2/admin/x', 'DELETE'), { kind: 'ok', route: '/api/v2/admin/' })
    t.strictSame(matchRoute(table, '/api/v1/x', 'GET'), { kind: 'ok', route: '/api/' })
    t.strictSame(matchRoute(table, '/api/v2/x', 'GET'), { kind: 'method_not_allowed', route: '/api/v2/', allow: 'POST' },
      'the most specific route decides, even when a shorter prefix would accept the method')
  }
})

t.test('an exact route wins over a prefix that also covers the path', async (t) => {
  const table = compileRoutes([{ path: '/api/', methods: ['GET'] }, { path: '/api/upload', methods: ['POST'] }])
  t.strictSame(matchRoute(table, '/api/upload', 'POST'), { kind: 'ok', route: '/api/upload' })
  t.strictSame(matchRoute(table, '/api/upload', 'GET'), { kind: 'method_not_allowed', route: '/api/upload', allow: 'POST' })
})

t.test('the query string is ignored for matching', async (t) => {
  t.strictSame(matchRoute(defaults, '/process/text?lang=en&x=/../metrics', 'POST'), { kind: 'ok', route: '/process/text' })
  t.strictSame(matchRoute(defaults, '/process/text?', 'POST'), { kind: 'ok', route: '/process/text' })
  t.strictSame(matchRoute(defaults, '/metrics?/process/text', 'GET'), { kind: 'not_found' })
})

t.test('a path with no route is 404', async (t) => {
  for (const path of ['/nope', '/metrics', '/diagnostics', '/healthz', '/process/files/uri', '/v3/process/files/uri']) {
    t.strictSame(matchRoute(defaults, path, 'GET'), { kind: 'not_found' }, path)
    t.strictSame(matchRoute(defaults, path, 'POST'), { kind: 'not_found' }, path)
  }
})

t.test('a known path with another method is 405 with the route\'s Allow value', async (t) => {
  t.strictSame(matchRoute(defaults, '/process/text', 'GET'), { kind: 'method_not_allowed', route: '/process/text', allow: 'POST' })
  const table = compileRoutes([{ path: '/x', methods: ['GET', 'POST', 'GET', 'HEAD'] }])
  t.strictSame(matchRoute(table, '/x', 'PUT'), { kind: 'method_not_allowed', route: '/x', allow: 'GET, POST, HEAD' }, 'listed once each, in order')
})

t.test('methods match exactly, case included', async (t) => {
  t.strictSame(matchRoute(defaults, '/process/text', 'post'), { kind: 'method_not_allowed', route: '/process/text', allow: 'POST' })
})

t.test('"/" matches only itself, not every path', async (t) => {
  t.strictSame(matchRoute(defaults, '/', 'GET'), { kind: 'ok', route: '/' })
  t.strictSame(matchRoute(defaults, '/?x=1', 'GET'), { kind: 'ok', route: '/' })
  t.strictSame(matchRoute(defaults, '/anything', 'GET'), { kind: 'not_found' })
  t.strictSame(matchRoute(compileRoutes([{ path: '/', methods: ['GET'] }]), '/metrics', 'GET'), { kind: 'not_found' })
})

t.test('paths the upstream could resolve to another route are refused as bad_path', async (t) => {
  for (const url of [
    '/a/../metrics',
    '/process/text/../../metrics',
    '/process/text/..',
    '/process/text/.',
    '/./metrics',
    '/process/text/%2e%2e/x',
    '/process/text/%2E%2E/x',
    '/process/text/.%2e/x',
    '/process/text%2f..%2fmetrics',
    '/process/text%5c..%5cmetrics',
    '//metrics',
    '/process//text',
    '/process/text\\..\\metrics',
    '/process\\text'
  ]) {
    t.strictSame(matchRoute(defaults, url, 'POST'), { kind: 'bad_path' }, url)
  }
})

t.test('a request target that does not start with "/" is refused as bad_path', async (t) => {
  for (const url of ['metrics', '*', 'http://127.0.0.1:8080/metrics', '', '?x=1']) {
    t.strictSame(matchRoute(defaults, url, 'GET'), { kind: 'bad_path' }, JSON.stringify(url))
  }
})

t.test('an unsafe path is refused before any route lookup, even under an allowed prefix', async (t) => {
  const table = compileRoutes([{ path: '/process/', methods: ['POST'] }])
  t.strictSame(matchRoute(table, '/process/../metrics', 'POST'), { kind: 'bad_path' })
  t.strictSame(matchRoute(table, '/process/%2e%2e/metrics', 'GET'), { kind: 'bad_path' })
})

t.test('dots inside a segment are ordinary characters, except ".." next to a slash', async (t) => {
  const table = compileRoutes([{ path: '/files/', methods: ['GET'] }])
  for (const path of ['/files/a.b', '/files/a..b', '/files/.well-known', '/files/x.']) {
    t.strictSame(matchRoute(table, path, 'GET'), { kind: 'ok', route: '/files/' }, path)
  }
  // @fastify/reply-from refuses any "/.." or "../" (with a 500); the allowlist refuses it first, with a 400.
  for (const path of ['/files/..x/y', '/files/a../b', '/files/...']) {
    t.strictSame(matchRoute(table, path, 'GET'), { kind: 'bad_path' }, path)
  }
})

t.test('the compiled route table is frozen', async (t) => {
  t.ok(Object.isFrozen(defaults))
  t.ok(Object.isFrozen(defaults.prefixes))
})
