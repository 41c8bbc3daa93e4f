// Background health check of the upstream: /readyz needs an upstream whose health path answered 200
// recently (docs/METRICS.md, "Admin endpoints"). Probes never wait on the upstream: they read the last
// result, which this keeps fresh.
export interface HealthState {
  /** The last check's outcome; undefined before the first one finishes. */
  ok: boolean | undefined
  /** performance.now() of the last finished check. */
  at: number
  detail: string
}

export interface HealthChecker {
  state: HealthState
  /** Fresh means the last check passed and is not older than `staleAfterMs`. */
  healthy: () => boolean
  stop: () => void
}

export interface HealthOptions {
  url: string
  intervalMs: number
  timeoutMs: number
  onResult: (ok: boolean) => void
}

export function startHealthChecks (opts: HealthOptions): HealthChecker {
  const state: HealthState = { ok: undefined, at: 0, detail: 'not checked yet' }
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const check = async (): Promise<void> => {
    try {
      const res = await fetch(opts.url, { signal: AbortSignal.timeout(opts.timeoutMs) })
      await res.body?.cancel()
      state.ok = res.status === 200
      state.detail = `answered ${res.status}`
    } catch (err) {
      state.ok = false
      state.detail = (err as Error).name === 'TimeoutError' ? `no answer within ${opts.timeoutMs} ms` : 'unreachable'
    }
    state.at = performance.now()
    opts.onResult(state.ok)
    if (!stopped) timer = setTimeout(() => { void check() }, opts.intervalMs).unref()
  }
  void check()
  // Three missed intervals and the result is too old to vouch for the upstream.
  const staleAfterMs = 3 * opts.intervalMs + opts.timeoutMs
  return {
    state,
    healthy: () => state.ok === true && performance.now() - state.at <= staleAfterMs,
    stop: () => { stopped = true; clearTimeout(timer) }
  }
}
