// The auth block's configuration: defaults, and every misconfiguration refused with its path, the way
// the CORS ones are (README, "Authentication").
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigText } from '../sidecar/config/load.ts'

function problems (text: string): string[] {
  const r = loadConfigText(text, 'test.yaml')
  if (r.ok) throw new Error('expected the configuration to be refused')
  return r.errors
}

const dir = mkdtempSync(join(tmpdir(), 'pai-auth-config-'))
const HASH = 'a'.repeat(64)
const keyFile = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p }

t.test('off by default; a jwt block gets its defaults', async (t) => {
  const off = loadConfigText('', 'test.yaml')
  t.ok(off.ok && off.snapshot.config.auth === undefined && off.snapshot.authKey === 'null')
  const on = loadConfigText('auth: { jwt: { issuer: "https://login.example.com/", audiences: [deid-api] } }', 'test.yaml')
  if (!on.ok) throw new Error(on.errors.join('\n'))
  t.same(on.snapshot.config.auth, {
    realm: 'pai-cors-sidecar',
    forwardCredentials: false,
    jwt: { issuer: 'https://login.example.com/', audiences: ['deid-api'], algorithms: ['RS256', 'ES256'], clockTolerance: '30s', requiredClaims: {}, jwksCooldown: '30s', jwksCacheMaxAge: '10m', jwksTimeout: '5s' }
  })
  t.ok(loadConfigText('auth: { jwt: { issuer: "http://127.0.0.1:9999", audiences: [a], jwksUrl: "http://localhost:9999/keys" } }', 'test.yaml').ok, 'plain http on loopback')
  t.ok(loadConfigText(`auth: { apiKeys: { file: ${keyFile('ok', `# comment\n\n${HASH} ci-pipeline\n${'B'.repeat(64)}\n`)} } }`, 'test.yaml').ok)
})

t.test('each misconfiguration is named with its path', async (t) => {
  const jwt = (fields: string): string => `auth: { jwt: { issuer: "https://login.example.com/", audiences: [deid-api], ${fields} } }`
  const cases: [string, string, RegExp][] = [
    ['an http:// issuer', 'auth: { jwt: { issuer: "http://login.example.com/", audiences: [a] } }', /^auth\.jwt\.issuer: "http:\/\/login\.example\.com\/" must be an https URL/],
    ['an issuer that is no http(s) URL', 'auth: { jwt: { issuer: "ftp://login.example.com/", audiences: [a] } }', /^auth\.jwt\.issuer: must be the issuer URL/],
    ['an http:// JWKS URL', jwt('jwksUrl: "http://login.example.com/keys"'), /^auth\.jwt\.jwksUrl: .* must be an https URL/],
    ['a JWKS URL with credentials', jwt('jwksUrl: "https://u:p@login.example.com/keys"'), /^auth\.jwt\.jwksUrl: /],
    ['a JWKS URL that does not parse', jwt('jwksUrl: "https://"'), /^auth\.jwt\.jwksUrl: /],
    ['an empty audience list', 'auth: { jwt: { issuer: "https://login.example.com/", audiences: [] } }', /^auth\.jwt\.audiences: must NOT have fewer than 1 items/],
    ['no audiences', 'auth: { jwt: { issuer: "https://login.example.com/" } }', /^auth\.jwt: must have required property 'audiences'/],
    ['an unknown algorithm', jwt('algorithms: [RS256, HS256]'), /^auth\.jwt\.algorithms\[1\]: must be one of RS256, .*EdDSA/],
    ['none', jwt('algorithms: [none]'), /^auth\.jwt\.algorithms\[0\]: must be one of/],
    ['a required claim jose checks itself', jwt('requiredClaims: { aud: x }'), /^auth\.jwt\.requiredClaims\.aud: is checked from/],
    ['a clock tolerance over 5 minutes', jwt('clockTolerance: 1h'), /^auth\.jwt\.clockTolerance: "1h" is too long; at most 300000ms/],
    ['a cool-down under a second', jwt('jwksCooldown: 10ms'), /^auth\.jwt\.jwksCooldown: "10ms" is too short; at least 1000ms/],
    ['a realm with a quote', 'auth: { realm: \'a"b\', apiKeys: { file: /x } }', /^auth\.realm: must be the realm of WWW-Authenticate/],
    ['an empty auth block', 'auth: {}', /^auth: configure jwt, apiKeys or both/],
    ['a relative key file', 'auth: { apiKeys: { file: keys } }', /^auth\.apiKeys\.file: must be an absolute path/],
    ['a missing key file', `auth: { apiKeys: { file: ${join(dir, 'missing')} } }`, /^auth\.apiKeys\.file: ".*missing" cannot read the file \(ENOENT\)$/],
    ['a key file holding a key, not a hash', `auth: { apiKeys: { file: ${keyFile('raw', `${HASH}\nsk-live-secret-key\n`)} } }`, /^auth\.apiKeys\.file: ".*raw" line 2 is not a SHA-256 hash/],
    ['a key file with a bad label', `auth: { apiKeys: { file: ${keyFile('label', `${HASH} two words\n`)} } }`, /line 1 is not a SHA-256 hash/],
    ['a key file with a duplicate', `auth: { apiKeys: { file: ${keyFile('dup', `${HASH} a\n${HASH.toUpperCase()} b\n`)} } }`, /line 2 holds the same hash as line 1/]
  ]
  for (const [what, text, expected] of cases) {
    const found = problems(text)
    t.match(found.join('\n'), expected, what)
    t.notOk(found.join('\n').includes('sk-live-secret-key'), `${what}: the file is never quoted`)
  }
})
