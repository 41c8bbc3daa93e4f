// The optional per-client limit (limits.rateLimit, off by default): at most `max` requests per
// client key in each fixed window of `window`. A fixed window, like @fastify/rate-limit's, so a client
// can make up to 2 × max across a window boundary; what it costs when off is one property read.
// Windows are counted from the limiter's creation (the sidecar's start), not from the epoch, so
// that every replica does not reset on the same wall-clock second.
// docs/OPERATIONS.md, "Overload".

/** Distinct clients counted per window; past it, a new client is let through uncounted. */
export const MAX_CLIENTS = 10_000

export class RateLimiter {
  readonly #origin: number
  #window = -1
  readonly #counts = new Map<string, number>()

  /** `origin`: when the first window starts (now, unless a test sets its clock). */
  constructor (origin = Date.now()) {
    this.#origin = origin
  }

  /** Takes one request from `key`'s budget; undefined when allowed, else the seconds until the next window. */
  take (key: string, max: number, windowMs: number, now = Date.now()): number | undefined {
    const window = Math.floor((now - this.#origin) / windowMs)
    if (window !== this.#window) {
      this.#window = window
      this.#counts.clear()
    }
    const used = this.#counts.get(key) ?? 0
    if (used >= max) return Math.max(1, Math.ceil((this.#origin + (window + 1) * windowMs - now) / 1000))
    if (used > 0 || this.#counts.size < MAX_CLIENTS) this.#counts.set(key, used + 1)
    return undefined
  }
}
