// Required claims (auth.jwt.requiredClaims): so that a token the same issuer made for another API,
// or another tenant, is refused (403, RFC 6750 §3.1 insufficient_scope). A space-separated claim
// such as `scope` (RFC 8693 §4.2) or an array must contain the value; anything else must equal it.
import type { JWTPayload } from 'jose'

function holds (value: unknown, wanted: string): boolean {
  if (typeof value === 'string') return value === wanted || value.split(' ').includes(wanted)
  if (Array.isArray(value)) return value.includes(wanted)
  return false
}

/** The first required claim the payload lacks, or undefined when it carries them all. */
export function missingClaim (payload: JWTPayload, required: Readonly<Record<string, string>>): string | undefined {
  return Object.keys(required).find((claim) => !holds(payload[claim], required[claim] as string))
}
