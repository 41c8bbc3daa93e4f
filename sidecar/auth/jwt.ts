// OIDC access tokens (RFC 7519, RFC 9068), verified with jose's jwtVerify: the signature with the
// issuer's keys (jwks.ts) and one of the allowed asymmetric algorithms, `iss` exactly, `aud` holding
// one configured audience, `exp` required and `exp`/`nbf` within the clock tolerance; then the
// required claims (claims.ts). Every failure comes back as a bounded reason, never the token, its
// claims or jose's error (whose payload is the raw claims).
import { errors, jwtVerify, type JWTPayload } from 'jose'
import type { Config } from '../config/schema.ts'
import { parseDuration } from '../config/durations.ts'
import { missingClaim } from './claims.ts'
import { KeySource, KeysUnavailable, type KeySourceEvents } from './jwks.ts'
import type { Fetch } from './discovery.ts'

export type JwtSettings = NonNullable<NonNullable<Config['auth']>['jwt']>

/** Why a token was refused: a bounded label for metrics and logs. */
export type JwtReason = 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience' | 'alg_not_allowed' | 'bad_signature' | 'unknown_key' | 'malformed' | 'claim_missing'

export type JwtOutcome =
  | { kind: 'accepted'; subject: string | undefined }
  | { kind: 'invalid'; reason: JwtReason }
  | { kind: 'forbidden'; reason: 'claim_missing' }
  | { kind: 'unavailable'; retryAfterSeconds: number }

function reasonOf (err: unknown): JwtReason {
  if (err instanceof errors.JWTExpired) return 'expired'
  if (err instanceof errors.JWTClaimValidationFailed) {
    return err.claim === 'nbf' ? 'not_yet_valid' : err.claim === 'iss' ? 'wrong_issuer' : err.claim === 'aud' ? 'wrong_audience' : 'malformed'
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'alg_not_allowed'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature'
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key'
  return 'malformed'
}

export class JwtVerifier {
  readonly #s: JwtSettings
  readonly #keys: KeySource
  readonly #toleranceSeconds: number

  constructor (settings: JwtSettings, events: KeySourceEvents, fetchImpl?: Fetch) {
    this.#s = settings
    this.#toleranceSeconds = parseDuration(settings.clockTolerance) / 1000
    this.#keys = new KeySource({
      issuer: settings.issuer,
      jwksUrl: settings.jwksUrl,
      cooldownMs: parseDuration(settings.jwksCooldown),
      cacheMaxAgeMs: parseDuration(settings.jwksCacheMaxAge),
      timeoutMs: parseDuration(settings.jwksTimeout)
    }, events, fetchImpl)
  }

  async verify (token: string): Promise<JwtOutcome> {
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, this.#keys.getKey, {
        issuer: this.#s.issuer,
        audience: this.#s.audiences,
        algorithms: this.#s.algorithms,
        clockTolerance: this.#toleranceSeconds,
        requiredClaims: ['exp']
      }))
    } catch (err) {
      if (err instanceof KeysUnavailable) return { kind: 'unavailable', retryAfterSeconds: err.retryAfterSeconds }
      return { kind: 'invalid', reason: reasonOf(err) }
    }
    if (missingClaim(payload, this.#s.requiredClaims) !== undefined) return { kind: 'forbidden', reason: 'claim_missing' }
    return { kind: 'accepted', subject: typeof payload.sub === 'string' ? payload.sub : undefined }
  }
}
