// One Authenticator for the auth block in force: built when a snapshot with a new auth block is first
// used, and kept while reloads leave the block as it is, so that the JWKS cache and the key file's
// watch survive every unrelated reload. The one it replaces is stopped (its key-file watch closed).
import type { Snapshot } from '../config/load.ts'
import { Authenticator, type AuthEvents, type AuthOptions } from './authenticate.ts'

export class AuthProvider {
  readonly #events: AuthEvents
  readonly #opts: AuthOptions
  #current: { block: string; auth: Authenticator } | undefined

  constructor (events: AuthEvents, opts: AuthOptions = {}) {
    this.#events = events
    this.#opts = opts
  }

  /** The authenticator for this snapshot's auth block, or undefined when authentication is off. */
  for (snap: Snapshot): Authenticator | undefined {
    const settings = snap.config.auth
    if (settings === undefined) return undefined
    const block = snap.authKey
    if (this.#current?.block !== block) {
      this.#current?.auth.stop()
      this.#current = { block, auth: new Authenticator(settings, this.#events, this.#opts) }
    }
    return this.#current.auth
  }

  close (): void {
    this.#current?.auth.stop()
    this.#current = undefined
  }
}
