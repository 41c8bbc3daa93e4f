// The issuer's signing keys, through jose (createRemoteJWKSet): fetched from jwksUrl (or the URL that
// discovery names), cached for jwksCacheMaxAge, fetched again on an unknown `kid` at most once per
// jwksCooldown, so a flood of made-up `kid`s cannot hammer the identity provider. When a fetch fails
// the last keys fetched keep verifying (stale-if-error), and the provider is not asked again before
// the cool-down has passed; with nothing usable cached the answer is 503 auth_unavailable.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, jwksCache, type CryptoKey, type FlattenedJWSInput, type JWKSCacheInput, type JWTHeaderParameters } from 'jose'
import { discoverJwksUrl, type Fetch } from './discovery.ts'

/** The keys cannot be had: the identity provider is down or answers nonsense (never the client's fault). */
export class KeysUnavailable extends Error {
  readonly retryAfterSeconds: number
  constructor (retryAfterSeconds: number) {
    super('the identity provider\'s keys are unavailable')
    this.retryAfterSeconds = retryAfterSeconds
  }
}

export interface KeySourceSettings {
  issuer: string
  jwksUrl: string | undefined
  cooldownMs: number
  cacheMaxAgeMs: number
  timeoutMs: number
}

export type FetchKind = 'discovery' | 'jwks'

export interface KeySourceEvents {
  /** Every request made to the identity provider, and whether it gave what was asked. */
  fetched: (kind: FetchKind, ok: boolean, detail: string) => void
}

/** What jose throws when the JWKS could not be fetched or parsed, as opposed to a token it cannot verify. */
function isFetchFailure (err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true // a network error from fetch itself
  return err.code === 'ERR_JOSE_GENERIC' || err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JWKS_INVALID'
}

/** A jose key set, remote or local. */
type Resolver = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>

export class KeySource {
  readonly #s: KeySourceSettings
  readonly #events: KeySourceEvents
  readonly #fetch: Fetch
  /** Written by jose after every successful fetch: the stale-if-error copy. */
  readonly #cache: JWKSCacheInput = {}
  #stale: { uat: number; keys: Resolver } | undefined
  #remote: Promise<Resolver> | undefined
  #failedAt = -Infinity

  constructor (settings: KeySourceSettings, events: KeySourceEvents, fetchImpl: Fetch = fetch) {
    this.#s = settings
    this.#events = events
    this.#fetch = fetchImpl
  }

  /** The resolver jwtVerify calls. */
  readonly getKey = async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (this.#coolingDown()) return await this.#fromStale(header, token)
    try {
      return await (await this.#remoteSet())(header, token)
    } catch (err) {
      if (!isFetchFailure(err)) throw err
      this.#failedAt = Date.now()
      return await this.#fromStale(header, token)
    }
  }

  #coolingDown (): boolean { return Date.now() < this.#failedAt + this.#s.cooldownMs }

  /**
   * A key the provider published before it went down. With none cached, or for a `kid` it never
   * published, nothing can be checked now: 503 until the cool-down lets the provider be asked again.
   */
  async #fromStale (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    const unavailable = (): KeysUnavailable => new KeysUnavailable(Math.max(1, Math.ceil((this.#failedAt + this.#s.cooldownMs - Date.now()) / 1000)))
    if (!('jwks' in this.#cache)) throw unavailable()
    if (this.#stale?.uat !== this.#cache.uat) this.#stale = { uat: this.#cache.uat, keys: createLocalJWKSet(this.#cache.jwks) }
    try {
      return await this.#stale.keys(header, token)
    } catch {
      throw unavailable()
    }
  }

  /** jose's remote set, once the JWKS URL is known (discovered on first use when not configured). */
  #remoteSet (): Promise<Resolver> {
    if (this.#remote !== undefined) return this.#remote
    const remote = this.#jwksUrl().then((url) => createRemoteJWKSet(url, {
      cooldownDuration: this.#s.cooldownMs,
      cacheMaxAge: this.#s.cacheMaxAgeMs,
      timeoutDuration: this.#s.timeoutMs,
      [jwksCache]: this.#cache,
      [customFetch]: this.#counted
    }))
    this.#remote = remote
    // A failed discovery is tried again after the cool-down, not remembered for ever.
    remote.catch(() => { this.#remote = undefined })
    return remote
  }

  async #jwksUrl (): Promise<URL> {
    if (this.#s.jwksUrl !== undefined) return new URL(this.#s.jwksUrl)
    try {
      const url = await discoverJwksUrl(this.#s.issuer, this.#s.timeoutMs, this.#fetch)
      this.#events.fetched('discovery', true, 'found jwks_uri')
      return url
    } catch (err) {
      this.#events.fetched('discovery', false, (err as Error).message)
      throw err
    }
  }

  /** jose's fetch of the JWKS, reported: every request to the provider is one event. */
  readonly #counted: Fetch = async (url, init) => {
    let res: Response
    try {
      res = await this.#fetch(url, init)
    } catch (err) {
      this.#events.fetched('jwks', false, `${(err as Error).name}: the request failed`)
      throw err
    }
    this.#events.fetched('jwks', res.status === 200, `HTTP ${res.status}`)
    return res
  }
}
