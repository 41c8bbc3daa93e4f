// What a request presents: an API key in x-api-key (what Private AI's own client sends), a bearer
// token in Authorization (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1), or
// nothing usable. Never logged: only which kind it was.
import type { IncomingHttpHeaders } from 'node:http'

export type Presented =
  | { kind: 'none' }
  | { kind: 'malformed' }
  | { kind: 'api_key'; key: string }
  | { kind: 'bearer'; token: string }

/** The headers a credential arrives in: removed before forwarding unless auth.forwardCredentials. */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'x-api-key'])

/** RFC 6750 §2.1: b64token. */
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/** `apiKeyHeader`: whether x-api-key is looked at (only when API keys are configured). */
export function presented (headers: IncomingHttpHeaders, apiKeyHeader: boolean): Presented {
  const key = apiKeyHeader ? headers['x-api-key'] : undefined
  // Node joins repeated x-api-key lines with ", ": two keys are no key.
  if (typeof key === 'string' && key !== '') return key.includes(',') ? { kind: 'malformed' } : { kind: 'api_key', key }
  const authorization = headers.authorization
  if (authorization === undefined || !/^bearer(\s|$)/i.test(authorization)) return { kind: 'none' }
  const m = BEARER.exec(authorization)
  return m === null ? { kind: 'malformed' } : { kind: 'bearer', token: m[1] as string }
}
