// OpenID Connect Discovery 1.0 §4: the issuer's metadata at `{issuer}/.well-known/openid-configuration`
// (its trailing slash removed first), whose `issuer` must be the configured one exactly (§4.3) and
// whose `jwks_uri` says where the signing keys are. Used only when auth.jwt.jwksUrl is omitted.
import { isSecureUrl } from './urls.ts'

/** The metadata could not be fetched or is not usable: the identity provider's fault, not the client's. */
export class DiscoveryFailed extends Error {}

export type Fetch = (url: string, init: RequestInit) => Promise<Response>

export function discoveryUrl (issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
}

export async function discoverJwksUrl (issuer: string, timeoutMs: number, fetchImpl: Fetch): Promise<URL> {
  let doc: unknown
  try {
    const res = await fetchImpl(discoveryUrl(issuer), { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual', headers: { accept: 'application/json' } })
    if (res.status !== 200) throw new DiscoveryFailed(`the discovery document answered HTTP ${res.status}`)
    doc = await res.json()
  } catch (err) {
    throw err instanceof DiscoveryFailed ? err : new DiscoveryFailed(`the discovery document could not be fetched (${(err as Error).name})`)
  }
  const meta = (typeof doc === 'object' && doc !== null ? doc : {}) as { issuer?: unknown; jwks_uri?: unknown }
  if (meta.issuer !== issuer) throw new DiscoveryFailed('the discovery document names another issuer (OIDC Discovery §4.3)')
  if (typeof meta.jwks_uri !== 'string' || !isSecureUrl(meta.jwks_uri)) throw new DiscoveryFailed('the discovery document has no https jwks_uri')
  return new URL(meta.jwks_uri)
}
