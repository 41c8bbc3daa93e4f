// Every duration of the configuration once: its name in `Snapshot.ms`, its path, and its floor where it
// bounds live work (zero would cut every request, or poll without pause). Both the bounds check and the
// milliseconds come from this one table.
import type { Config } from './schema.ts'

export type DurationName =
  | 'keepAliveTimeout' | 'headersTimeout' | 'connectTimeout' | 'upstreamHeadersTimeout' | 'requestTimeout'
  | 'upstreamKeepAliveTimeout' | 'healthInterval' | 'healthTimeout' | 'queueTimeout' | 'bodyIdleTimeout'
  | 'rateLimitWindow' | 'websocketIdleTimeout' | 'shutdownDelay' | 'shutdownTimeout'

const DURATIONS: [DurationName, string, number][] = [
  ['keepAliveTimeout', 'server.keepAliveTimeout', 0],
  ['headersTimeout', 'server.headersTimeout', 100],
  ['healthInterval', 'upstream.healthInterval', 10],
  ['healthTimeout', 'upstream.healthTimeout', 10],
  ['connectTimeout', 'upstream.connectTimeout', 10],
  ['upstreamHeadersTimeout', 'upstream.headersTimeout', 100],
  ['requestTimeout', 'upstream.requestTimeout', 100],
  ['upstreamKeepAliveTimeout', 'upstream.keepAliveTimeout', 0],
  ['queueTimeout', 'upstream.queue.timeout', 0],
  ['bodyIdleTimeout', 'limits.bodyIdleTimeout', 100],
  ['rateLimitWindow', 'limits.rateLimit.window', 100],
  ['websocketIdleTimeout', 'websocket.idleTimeout', 100],
  ['shutdownDelay', 'shutdown.delay', 0],
  ['shutdownTimeout', 'shutdown.timeout', 0]
]

/**
 * The durations of `auth.jwt` (absent unless authentication is configured, so not in `Snapshot.ms`):
 * path, floor and ceiling. A cool-down under 1 s would let a flood of unknown `kid`s fetch the JWKS
 * that often; a clock tolerance over 5 min would accept tokens long expired.
 */
const AUTH_DURATIONS: [string, number, number][] = [
  ['auth.jwt.clockTolerance', 0, 300_000],
  ['auth.jwt.jwksCooldown', 1000, 3_600_000],
  ['auth.jwt.jwksCacheMaxAge', 1000, 86_400_000],
  ['auth.jwt.jwksTimeout', 100, 60_000]
]

const FORM = /^([0-9]+)(ms|s|m|h)$/
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `30s` → 30000. The schema has already checked the form. */
export function parseDuration (value: string): number {
  const m = FORM.exec(value)
  if (m === null) throw new Error(`not a duration: ${value}`)
  return Number(m[1]) * (UNITS[m[2] as string] as number)
}

/** Node's timers fire at once (with only a warning) past 2^31 − 1 ms, about 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The value at a dotted path of a document of any shape; undefined where the shape does not fit. */
function at (doc: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, part) => typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined, doc)
}

/**
 * Durations out of bounds. It reads the raw document (one that failed the schema too), so that these
 * problems are reported together with every other; a value of the wrong form is the schema's to name.
 */
export function durationProblems (doc: unknown): string[] {
  const bounds: [string, number, number][] = [...DURATIONS.map(([, path, min]): [string, number, number] => [path, min, MAX_TIMER_MS]), ...AUTH_DURATIONS]
  return bounds.flatMap(([path, min, max]) => {
    const value = at(doc, path)
    if (typeof value !== 'string' || !FORM.test(value)) return []
    const ms = parseDuration(value)
    if (ms < min) return [`${path}: "${value}" is too short; at least ${min}ms`]
    if (ms > max) return [`${path}: "${value}" is too long; at most ${max === MAX_TIMER_MS ? '596h' : `${max}ms`}`]
    return []
  })
}

/** Every duration in milliseconds. Only upstream.headersTimeout is optional; it defaults to upstream.requestTimeout. */
export function durations (config: Config): Record<DurationName, number> {
  return Object.fromEntries(DURATIONS.map(([name, path]) => {
    // Any other duration missing is a bug in the schema's defaults: parseDuration throws on it.
    const value = name === 'upstreamHeadersTimeout' ? config.upstream.headersTimeout ?? config.upstream.requestTimeout : at(config, path) as string
    return [name, parseDuration(value)]
  })) as Record<DurationName, number>
}
