// Authentication of one request (README, "Authentication"): an API key (x-api-key, or a bearer token
// that is one of the keys), else a JWT when auth.jwt is set; a request passes if either accepts it.
// The answer for a refusal follows RFC 6750 §3: 401 with `WWW-Authenticate: Bearer realm=…` (and
// error="invalid_token" when a credential was presented), 403 insufficient_scope for a valid token
// that lacks a required claim, 503 with Retry-After when the identity provider cannot be reached.
// No fastify here: the HTTP step (http/authenticate.ts) and the WebSocket upgrade both call it.
import { createHmac, randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Config } from '../config/schema.ts'
import { matchKey } from './api-keys.ts'
import { presented } from './credentials.ts'
import type { Fetch } from './discovery.ts'
import type { KeySourceEvents } from './jwks.ts'
import { JwtVerifier, type JwtReason } from './jwt.ts'
import { WatchedKeyFile, type KeyFileEvents, type KeyFileOptions } from './key-file.ts'

export type AuthSettings = NonNullable<Config['auth']>
export type AuthMethod = 'jwt' | 'api_key' | 'none'
/** Bounded labels: why a request was refused (or `ok`). */
export type AuthReason = 'ok' | 'missing' | 'malformed' | 'unknown_key' | 'keys_unavailable' | JwtReason
export type AuthRefusalCode = 'unauthorized' | 'forbidden' | 'auth_unavailable'

export type AuthResult =
  | { ok: true; method: 'jwt' | 'api_key'; reason: 'ok'; identity: string | undefined; ref: string | undefined; forwardCredentials: boolean }
  | { ok: false; code: AuthRefusalCode; method: AuthMethod; reason: AuthReason; headers: Record<string, string> }

export interface AuthEvents extends KeySourceEvents, KeyFileEvents {}

export interface AuthOptions { fetch?: Fetch | undefined; keyFile?: KeyFileOptions | undefined }

/** A per-process key: the identity reference in a log line is stable within the process and cannot be reversed. */
const REF_KEY = randomBytes(32)
export const identityRef = (identity: string): string => createHmac('sha256', REF_KEY).update(identity).digest('hex').slice(0, 12)

export class Authenticator {
  readonly #realm: string
  readonly #forward: boolean
  readonly #jwt: JwtVerifier | undefined
  readonly #keys: WatchedKeyFile | undefined

  constructor (settings: AuthSettings, events: AuthEvents, opts: AuthOptions = {}) {
    this.#realm = settings.realm
    this.#forward = settings.forwardCredentials
    this.#jwt = settings.jwt === undefined ? undefined : new JwtVerifier(settings.jwt, events, opts.fetch)
    this.#keys = settings.apiKeys === undefined ? undefined : new WatchedKeyFile(settings.apiKeys.file, events, opts.keyFile)
  }

  async authenticate (headers: IncomingHttpHeaders): Promise<AuthResult> {
    const p = presented(headers, this.#keys !== undefined)
    if (p.kind === 'none') return this.#refuse('unauthorized', this.#jwt === undefined ? 'api_key' : 'jwt', 'missing')
    if (p.kind === 'malformed') return this.#refuse('unauthorized', 'none', 'malformed')
    const secret = p.kind === 'api_key' ? p.key : p.token
    const label = this.#keys === undefined ? undefined : matchKey(this.#keys.keys, secret)
    if (label !== undefined) return this.#accept('api_key', `key:${label}`)
    if (p.kind === 'api_key' || this.#jwt === undefined) return this.#refuse('unauthorized', 'api_key', 'unknown_key')
    const outcome = await this.#jwt.verify(p.token)
    switch (outcome.kind) {
      case 'accepted': return this.#accept('jwt', outcome.subject === undefined ? undefined : `jwt:${outcome.subject}`)
      case 'invalid': return this.#refuse('unauthorized', 'jwt', outcome.reason)
      case 'forbidden': return this.#refuse('forbidden', 'jwt', outcome.reason)
      case 'unavailable': return { ok: false, code: 'auth_unavailable', method: 'jwt', reason: 'keys_unavailable', headers: { 'retry-after': String(outcome.retryAfterSeconds) } }
    }
  }

  stop (): void { this.#keys?.stop() }

  #accept (method: 'jwt' | 'api_key', identity: string | undefined): AuthResult {
    return { ok: true, method, reason: 'ok', identity, ref: identity === undefined ? undefined : identityRef(identity), forwardCredentials: this.#forward }
  }

  #refuse (code: 'unauthorized' | 'forbidden', method: AuthMethod, reason: AuthReason): AuthResult {
    // RFC 6750 §3.1: no error code when the request carried no credential at all.
    const error = reason === 'missing' ? '' : code === 'forbidden' ? ', error="insufficient_scope"' : ', error="invalid_token"'
    return { ok: false, code, method, reason, headers: { 'www-authenticate': `Bearer realm="${this.#realm}"${error}` } }
  }
}
