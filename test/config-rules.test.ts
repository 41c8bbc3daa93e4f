// Configurations refused as insecure or that could never work (README, "Refused as insecure": a
// clear error, never silently fixed), checked through the whole load pipeline so that the
// message a user sees is the one tested. Every message names its path: `cors.allowedOrigins[2]: "…" …`.
import t, { type Test } from 'tap'
import { loadConfigText, type Snapshot } from '../sidecar/config/load.ts'
import { securityProblems } from '../sidecar/config/rules.ts'

function load (text: string): Snapshot {
  const r = loadConfigText(text, 'test.yaml')
  if (!r.ok) throw new Error(`expected a valid configuration, got:\n${r.errors.join('\n')}`)
  return r.snapshot
}

function problems (text: string): string[] {
  const r = loadConfigText(text, 'test.yaml')
  if (r.ok) throw new Error('expected the configuration to be refused')
  return r.errors
}

const yamlList = (items: readonly string[]): string => `[${items.map((s) => JSON.stringify(s)).join(', ')}]`

/** A cors block (or shadow block) with these origins, credentials on or off. */
const origins = (list: readonly string[], credentials: boolean, block = 'cors'): string =>
  `${block}: { allowCredentials: ${String(credentials)}, allowedOrigins: ${yamlList(list)} }`

/** The single problem of a file, which must start with `path: "entry"`. */
function only (t: Test, text: string, path: string, entry: string): string {
  const errors = problems(text)
  t.equal(errors.length, 1, `exactly one problem for ${text}`)
  const e = errors[0] as string
  t.ok(e.startsWith(`${path}: "${entry}" `), `${e} starts with ${path}: "${entry}"`)
  return e
}

t.test('the default configuration has no security problem', async (t) => {
  t.strictSame(securityProblems(load('').config), [])
})

t.test('"*" with credentials is refused', async (t) => {
  const e = only(t, origins(['*'], true), 'cors.allowedOrigins[0]', '*')
  t.match(e, /allowCredentials: true is refused/)
})

t.test('"*" without credentials is accepted', async (t) => {
  t.ok(load(origins(['*'], false)).cors.anyOrigin)
})

t.test('a wildcard over a public suffix is refused', async (t) => {
  for (const entry of ['https://*.com', 'https://*.co.uk', 'https://*.github.io']) {
    for (const credentials of [false, true]) {
      const e = only(t, origins([entry], credentials), 'cors.allowedOrigins[0]', entry)
      t.match(e, /wildcard over a public suffix/)
    }
  }
})

t.test('a wildcard over a registrable domain is accepted, with or without credentials', async (t) => {
  t.ok(load(origins(['https://*.example.com'], true)))
  t.ok(load(origins(['https://*.example.co.uk', 'https://*.me.github.io'], false)))
})

t.test('the "null" origin is refused, with or without credentials', async (t) => {
  for (const credentials of [false, true]) {
    const e = only(t, origins(['https://app.example.com', 'null'], credentials), 'cors.allowedOrigins[1]', 'null')
    t.match(e, /"null" is refused: any sandboxed iframe/)
  }
})

t.test('a plain http origin outside localhost/loopback is refused with credentials', async (t) => {
  for (const entry of ['http://app.example.com', 'http://app.example.com:8080', 'http://*.example.com', 'http://10.0.0.5:3000', 'http://app.example.com:*']) {
    const e = only(t, origins([entry], true), 'cors.allowedOrigins[0]', entry)
    t.match(e, /plain http with allowCredentials: true, which is refused outside localhost\/loopback/)
  }
})

t.test('a plain http origin is accepted without credentials', async (t) => {
  t.ok(load(origins(['http://app.example.com', 'http://*.example.com'], false)))
})

t.test('localhost and loopback http origins are accepted with credentials', async (t) => {
  const snap = load(origins(['http://localhost:3000', 'http://127.0.0.1:3000', 'http://localhost:*', 'http://[::1]:3000', 'http://app.localhost:5173', 'http://localhost'], true))
  t.ok(snap.cors.exactOrigins.has('http://localhost:3000'))
  t.ok(snap.cors.exactOrigins.has('http://127.0.0.1:3000'))
})

t.test('https origins are accepted with credentials', async (t) => {
  t.ok(load(origins(['https://app.example.com', 'https://app.example.com:8443'], true)))
})

t.test('an origin with a path, query, fragment or user info is refused', async (t) => {
  for (const entry of ['https://app.example.com/app', 'https://app.example.com?x=1', 'https://app.example.com#top', 'https://user@app.example.com']) {
    const e = only(t, origins([entry], false), 'cors.allowedOrigins[0]', entry)
    t.match(e, /an origin is only scheme:\/\/host\[:port\]/)
  }
})

t.test('an origin with a trailing slash is refused with the corrected form', async (t) => {
  const e = only(t, origins(['https://app.example.com/'], false), 'cors.allowedOrigins[0]', 'https://app.example.com/')
  t.match(e, /no trailing slash: write "https:\/\/app\.example\.com"/)
})

t.test('an origin in upper case is refused with the lower-case form', async (t) => {
  for (const [entry, lower] of [['https://App.Example.com', 'https://app.example.com'], ['HTTPS://app.example.com', 'https://app.example.com']] as const) {
    const e = only(t, origins([entry], false), 'cors.allowedOrigins[0]', entry)
    t.ok(e.includes(`could never match: write "${lower}"`), e)
  }
})

t.test('the corrected form an origin error suggests is the fully mended entry, which itself passes', async (t) => {
  const cases = [
    ['HTTPS://App.example.com/', 'https://app.example.com'],
    ['HTTPS://APP.EXAMPLE.COM:443/', 'https://app.example.com'],
    ['https://app.example.com:443/', 'https://app.example.com'],
    ['HTTP://127.1:3000/', 'http://127.0.0.1:3000'],
    ['https://*.Example.com', 'https://*.example.com']
  ] as const
  for (const [entry, fixed] of cases) {
    const e = only(t, origins([entry], false), 'cors.allowedOrigins[0]', entry)
    t.ok(e.endsWith(`: write "${fixed}"`), e)
    t.equal(e.split('write "').length, 2, `one suggestion, not one per problem: ${e}`)
    t.ok(load(origins([fixed], false)), `the suggestion "${fixed}" is accepted`)
  }
})

t.test('an origin error gives no suggestion when no mended entry would pass', async (t) => {
  const e = only(t, origins(['HTTPS://App.example.com/app'], false), 'cors.allowedOrigins[0]', 'HTTPS://App.example.com/app')
  t.match(e, /has upper case/)
  t.notMatch(e, /write "/, 'lower case alone still has a path, so no value is offered')
})

t.test('"*" with allowPrivateNetwork is refused: every public page could reach a private service', async (t) => {
  for (const block of ['cors', 'shadow']) {
    const e = only(t, `${block}: { allowedOrigins: ["*"], allowPrivateNetwork: true }`, `${block}.allowedOrigins[0]`, '*')
    t.match(e, /with allowPrivateNetwork: true is refused: every public web page on the internet could reach this private-network service/)
  }
  t.ok(load('cors: { allowedOrigins: [https://app.example.com], allowPrivateNetwork: true }'), 'a listed origin with allowPrivateNetwork is fine')
  t.ok(load('cors: { allowedOrigins: ["*"], allowPrivateNetwork: false }'), '"*" without allowPrivateNetwork is fine')
})

t.test('an origin that writes out its default port is refused', async (t) => {
  for (const [entry, fixed] of [['https://app.example.com:443', 'https://app.example.com'], ['http://app.example.com:80', 'http://app.example.com']] as const) {
    const e = only(t, origins([entry], false), 'cors.allowedOrigins[0]', entry)
    t.ok(e.includes('default port') && e.includes(`write "${fixed}"`), e)
  }
})

t.test('an origin entry that is not scheme://host[:port] is refused', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['app.example.com', /is not an origin/],
    ['ftp://files.example.com', /only http and https/],
    ['https://app.example.com:99999', /invalid port "99999"/],
    ['https://app.example.com:0443', /invalid port "0443"/],
    ['https://app_x.example.com', /invalid host/],
    ['https://a.*.example.com', /"\*" in the wrong place/],
    ['https://*.[::1]', /invalid host "\[::1\]" after "\*\."/]
  ]
  for (const [entry, why] of cases) t.match(only(t, origins([entry], false), 'cors.allowedOrigins[0]', entry), why)
})

t.test('"*" in exposedHeaders is refused with credentials and accepted without', async (t) => {
  const e = only(t, 'cors: { allowCredentials: true, exposedHeaders: ["x-request-id", "*"] }', 'cors.exposedHeaders[1]', '*')
  t.match(e, /with allowCredentials: true is refused/)
  t.ok(load('cors: { allowCredentials: false, exposedHeaders: ["*"] }'))
})

t.test('forbidden request headers are refused in allowedHeaders, whatever their case', async (t) => {
  for (const name of ['cookie', 'Cookie', 'host', 'origin', 'content-length', 'sec-fetch-mode', 'Sec-CH-UA', 'proxy-authorization', 'Proxy-Foo']) {
    const e = only(t, `cors: { allowedHeaders: ${yamlList(['content-type', name])} }`, 'cors.allowedHeaders[1]', name)
    t.match(e, /forbidden request header/)
  }
})

t.test('ordinary request headers, authorization and "*" are accepted in allowedHeaders', async (t) => {
  t.ok(load('cors: { allowedHeaders: [content-type, x-request-id, authorization, x-api-key, "*"] }'))
})

t.test('a header name that is not a token is refused', async (t) => {
  t.match(only(t, 'cors: { allowedHeaders: ["content type"] }', 'cors.allowedHeaders[0]', 'content type'), /is not a header name/)
  t.match(only(t, 'cors: { exposedHeaders: ["x-id:"] }', 'cors.exposedHeaders[0]', 'x-id:'), /is not a header name/)
})

t.test('set-cookie cannot be exposed to a page', async (t) => {
  for (const name of ['set-cookie', 'Set-Cookie', 'set-cookie2']) {
    const e = only(t, `cors: { exposedHeaders: ${yamlList([name])} }`, 'cors.exposedHeaders[0]', name)
    t.match(e, /can never be exposed/)
  }
})

t.test('a lower-case method that browsers normalise could never match and is refused', async (t) => {
  for (const method of ['post', 'Put', 'delete', 'get']) {
    const e = only(t, `cors: { allowedMethods: ${yamlList([method])} }`, 'cors.allowedMethods[0]', method)
    t.ok(e.includes('could never match') && e.includes(`write "${method.toUpperCase()}"`), e)
  }
})

t.test('methods browsers send as written (PATCH, patch, custom) and "*" are accepted', async (t) => {
  const snap = load('cors: { allowedMethods: [POST, PATCH, patch, PROPFIND, "*"] }')
  t.ok(snap.cors.methods.has('patch'))
})

t.test('TRACE, CONNECT and TRACK are refused as forbidden methods, whatever their case', async (t) => {
  for (const method of ['TRACE', 'CONNECT', 'TRACK', 'trace']) {
    const e = only(t, `cors: { allowedMethods: ${yamlList([method])} }`, 'cors.allowedMethods[0]', method)
    t.match(e, /forbidden method/)
  }
})

t.test('a method that is not a token is refused', async (t) => {
  t.match(only(t, 'cors: { allowedMethods: ["GE T"] }', 'cors.allowedMethods[0]', 'GE T'), /is not a method name/)
})

t.test('a route path listed twice is refused', async (t) => {
  const e = only(t, 'routes: [{ path: /process/text, methods: [POST] }, { path: /ner/text, methods: [POST] }, { path: /process/text, methods: [GET] }]', 'routes[2].path', '/process/text')
  t.match(e, /listed twice/)
})

t.test('route paths with dot segments, empty segments, escapes, backslashes, query or fragment are refused', async (t) => {
  for (const path of ['/a/../metrics', '/a/..', '/a/./b', '/a/.', '//metrics', '/process//text', '/process/%2e%2e/metrics', '/a%2Fb', '/a\\b', '/a?b', '/a#b']) {
    const e = only(t, `routes: [{ path: ${JSON.stringify(path)}, methods: [GET] }]`, 'routes[0].path', path)
    t.match(e, /must be a plain path/)
  }
})

t.test('plain exact and prefix route paths are accepted, dots inside names included', async (t) => {
  t.ok(load('routes: [{ path: /, methods: [GET] }, { path: /files/, methods: [POST] }, { path: /v1.2/a..b/.well-known, methods: [GET] }]'))
})

t.test('a lower-case route method could never match and is refused', async (t) => {
  const errors = loadConfigText('routes: [{ path: /process/text, methods: [post] }]', 'test.yaml')
  t.equal(errors.ok, false)
  t.match(errors.ok ? [] : errors.errors, [/^routes\[0\]\.methods\[0\]: "post"/])
})

t.test('an upstream URL with a path, query or credentials is refused', async (t) => {
  for (const url of ['http://127.0.0.1:8080/api', 'http://127.0.0.1:8080/v3/', 'http://127.0.0.1:8080?x=1', 'http://user:pw@127.0.0.1:8080']) {
    const e = only(t, `upstream: { url: ${JSON.stringify(url)} }`, 'upstream.url', url)
    t.match(e, /must be scheme:\/\/host:port only/)
  }
})

t.test('an upstream URL that does not parse is refused', async (t) => {
  t.match(only(t, 'upstream: { url: "http://" }', 'upstream.url', 'http://'), /is not a URL/)
  t.match(only(t, 'upstream: { url: "http://exa mple:8080" }', 'upstream.url', 'http://exa mple:8080'), /is not a URL/)
})

t.test('an upstream URL of scheme://host:port, with or without a final slash, is accepted', async (t) => {
  t.ok(load('upstream: { url: "http://127.0.0.1:8080/" }'))
  t.ok(load('upstream: { url: "https://pai.internal:8443" }'))
})

t.test('an upstream URL with only a password is refused like one with user and password', async (t) => {
  const r = loadConfigText('upstream: { url: "http://:secret@127.0.0.1:8080" }', 'test.yaml')
  t.equal(r.ok, false)
})

t.test('the shadow block is held to the same rules, with shadow. paths', async (t) => {
  const errors = problems([
    'shadow:',
    '  allowCredentials: true',
    '  allowedOrigins: ["*", "https://*.com", "null", "http://app.example.com", "https://app.example.com/"]',
    '  allowedMethods: [post, TRACE]',
    '  allowedHeaders: [cookie, sec-fetch-site]',
    '  exposedHeaders: ["*", set-cookie]'
  ].join('\n'))
  const paths = errors.map((e) => e.slice(0, e.indexOf(': ')))
  t.strictSame(paths, [
    'shadow.allowedOrigins[0]', 'shadow.allowedOrigins[1]', 'shadow.allowedOrigins[2]', 'shadow.allowedOrigins[3]', 'shadow.allowedOrigins[4]',
    'shadow.allowedMethods[0]', 'shadow.allowedMethods[1]',
    'shadow.allowedHeaders[0]', 'shadow.allowedHeaders[1]',
    'shadow.exposedHeaders[0]', 'shadow.exposedHeaders[1]'
  ])
})

t.test('the shadow block is checked with its own credentials setting, not the cors one', async (t) => {
  t.ok(load('cors: { allowCredentials: true, allowedOrigins: [https://app.example.com] }\nshadow: { allowedOrigins: ["*"] }'))
  only(t, 'cors: { allowedOrigins: ["*"] }\nshadow: { allowCredentials: true, allowedOrigins: ["*"] }', 'shadow.allowedOrigins[0]', '*')
})

t.test('every security problem of a file is reported together, in cors, shadow, routes and upstream', async (t) => {
  const errors = problems([
    'cors: { allowCredentials: true, allowedOrigins: ["*", "https://app.example.com", "null"] }',
    'shadow: { allowedHeaders: [cookie] }',
    'routes: [{ path: /a/../metrics, methods: [GET] }, { path: /x, methods: [GET] }, { path: /x, methods: [POST] }]',
    'upstream: { url: "http://127.0.0.1:8080/api" }'
  ].join('\n'))
  t.strictSame(errors.map((e) => e.slice(0, e.indexOf(': '))), [
    'cors.allowedOrigins[0]', 'cors.allowedOrigins[2]', 'shadow.allowedHeaders[0]', 'routes[0].path', 'routes[2].path', 'upstream.url'
  ])
})

t.test('schema errors and rule violations are reported together, and odd shapes do not crash the rules', async (t) => {
  const both = problems('cors: { allowedOrigins: ["*"], allowCredentials: true, maxAge: 90000 }')
  t.match(both, [/^cors\.maxAge: must be <= 86400/, /^cors\.allowedOrigins\[0\]: "\*" with allowCredentials: true is refused/])
  const odd = problems('cors: 5\nshadow: [1]\nroutes: [5, { path: 7, methods: [post, 3] }]\nupstream: { url: 9 }')
  t.ok(odd.length >= 4, 'the schema names the wrong shapes')
  t.ok(odd.includes('routes[1].methods[0]: "post" could never match: browsers send POST in upper case; write "POST"'))
  t.same(securityProblems({ cors: 'x', routes: 'y', upstream: null }), [])
})
