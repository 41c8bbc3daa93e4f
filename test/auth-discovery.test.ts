// OIDC discovery's checks (OIDC Discovery §4.3) on documents a real provider could serve.
import t from 'tap'
import { discoverJwksUrl, discoveryUrl, DiscoveryFailed } from '../sidecar/auth/discovery.ts'

const ISSUER = 'https://login.example.com/'
const serving = (body: unknown) => async (): Promise<Response> => new Response(JSON.stringify(body), { status: 200 })

t.test('the discovery URL drops the issuer\'s trailing slash', async (t) => {
  t.equal(discoveryUrl(ISSUER), 'https://login.example.com/.well-known/openid-configuration')
  t.equal(discoveryUrl('https://login.example.com/tenant'), 'https://login.example.com/tenant/.well-known/openid-configuration')
})

t.test('a usable document gives its jwks_uri', async (t) => {
  const url = await discoverJwksUrl(ISSUER, 1000, serving({ issuer: ISSUER, jwks_uri: 'https://login.example.com/keys' }))
  t.equal(url.href, 'https://login.example.com/keys')
})

t.test('unusable documents are refused', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', null, /another issuer/],
    ['another issuer', { issuer: 'https://login.example.com', jwks_uri: 'https://login.example.com/keys' }, /another issuer/],
    ['no jwks_uri', { issuer: ISSUER }, /no https jwks_uri/],
    ['a plain http jwks_uri', { issuer: ISSUER, jwks_uri: 'http://login.example.com/keys' }, /no https jwks_uri/]
  ]
  for (const [what, body, message] of cases) await t.rejects(discoverJwksUrl(ISSUER, 1000, serving(body)), { constructor: DiscoveryFailed, message }, what)
  await t.rejects(discoverJwksUrl(ISSUER, 1000, async () => new Response('{not json', { status: 200 })), { message: /could not be fetched \(SyntaxError\)/ })
})
