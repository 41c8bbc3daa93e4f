// YAML → schema validation (every error, with its path) → security rules → one frozen snapshot.
// A caller gets either a whole valid snapshot or the complete list of problems: never a partly
// applied or silently corrected configuration (oauth2-proxy's Validate() does the same).
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { compilePolicy, type CorsPolicy } from '../cors/policy.ts'
import { compileRoutes, type RouteTable } from '../routes.ts'
import { securityProblems } from './rules.ts'
import { ConfigSchema, type Config } from './schema.ts'

export interface Snapshot {
  readonly config: Readonly<Config>
  readonly cors: CorsPolicy
  readonly shadow: CorsPolicy | undefined
  readonly routes: RouteTable
  /** Durations in milliseconds. */
  readonly ms: Readonly<Record<DurationName, number>>
  /** First 12 hex digits of the SHA-256 of the validated configuration, to tell versions apart. */
  readonly hash: string
  readonly source: string
}

export type DurationName =
  | 'keepAliveTimeout' | 'headersTimeout' | 'connectTimeout' | 'upstreamHeadersTimeout' | 'requestTimeout'
  | 'upstreamKeepAliveTimeout' | 'healthInterval' | 'healthTimeout' | 'queueTimeout' | 'bodyIdleTimeout'
  | 'rateLimitWindow' | 'websocketIdleTimeout' | 'shutdownDelay' | 'shutdownTimeout'

export type LoadResult = { ok: true; snapshot: Snapshot } | { ok: false; errors: string[] }

/** A few settings a developer sets on the command line or in the environment, over the file. */
export interface Overrides {
  upstream?: string | undefined
  allowOrigins?: string[] | undefined
  host?: string | undefined
  port?: number | undefined
  adminPort?: number | undefined
  logLevel?: string | undefined
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictTypes: false })
const validate = ajv.compile<Config>(ConfigSchema)

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `30s` → 30000. The schema has already checked the form. */
export function parseDuration (value: string): number {
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(value)
  if (m === null) throw new Error(`not a duration: ${value}`)
  return Number(m[1]) * (UNITS[m[2] as string] as number)
}

/** Node's timers fire at once (with only a warning) past 2^31 − 1 ms, about 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Every duration once: its name in `Snapshot.ms`, its path, where it is read, and its floor where it
 * bounds live work (zero would cut every request, or poll without pause). Both the bounds check and
 * the milliseconds come from this one table.
 */
const DURATIONS: [DurationName, string, (c: Config) => string | undefined, number][] = [
  ['keepAliveTimeout', 'server.keepAliveTimeout', (c) => c.server.keepAliveTimeout, 0],
  ['headersTimeout', 'server.headersTimeout', (c) => c.server.headersTimeout, 100],
  ['healthInterval', 'upstream.healthInterval', (c) => c.upstream.healthInterval, 10],
  ['healthTimeout', 'upstream.healthTimeout', (c) => c.upstream.healthTimeout, 10],
  ['connectTimeout', 'upstream.connectTimeout', (c) => c.upstream.connectTimeout, 10],
  ['upstreamHeadersTimeout', 'upstream.headersTimeout', (c) => c.upstream.headersTimeout, 100],
  ['requestTimeout', 'upstream.requestTimeout', (c) => c.upstream.requestTimeout, 100],
  ['upstreamKeepAliveTimeout', 'upstream.keepAliveTimeout', (c) => c.upstream.keepAliveTimeout, 0],
  ['queueTimeout', 'upstream.queue.timeout', (c) => c.upstream.queue.timeout, 0],
  ['bodyIdleTimeout', 'limits.bodyIdleTimeout', (c) => c.limits.bodyIdleTimeout, 100],
  ['rateLimitWindow', 'limits.rateLimit.window', (c) => c.limits.rateLimit.window, 100],
  ['websocketIdleTimeout', 'websocket.idleTimeout', (c) => c.websocket.idleTimeout, 100],
  ['shutdownDelay', 'shutdown.delay', (c) => c.shutdown.delay, 0],
  ['shutdownTimeout', 'shutdown.timeout', (c) => c.shutdown.timeout, 0]
]

function durationProblems (config: Config): string[] {
  return DURATIONS.flatMap(([, path, read, min]) => {
    const value = read(config)
    if (value === undefined) return []
    const ms = parseDuration(value)
    if (ms < min) return [`${path}: "${value}" is too short; at least ${min}ms`]
    if (ms > MAX_TIMER_MS) return [`${path}: "${value}" is too long; at most 596h`]
    return []
  })
}

/** Only upstream.headersTimeout is optional; it defaults to upstream.requestTimeout. */
function durations (config: Config): Record<DurationName, number> {
  return Object.fromEntries(DURATIONS.map(([name, , read]) => [name, parseDuration(read(config) ?? config.upstream.requestTimeout)])) as Record<DurationName, number>
}

/** `/cors/allowedOrigins/2` → `cors.allowedOrigins[2]`. */
export function jsonPath (pointer: string): string {
  return pointer.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => /^[0-9]+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`, '')
}

/** Edits (insert, delete, substitute, swap two neighbours) between two names, case ignored. */
function distance (a: string, b: string): number {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  // d[i][j]: edits between the first i characters of x and the first j of y.
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const row = d[i] as number[]
      const up = d[i - 1] as number[]
      row[j] = Math.min(up[j] as number + 1, row[j - 1] as number + 1, up[j - 1] as number + (x[i - 1] === y[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) row[j] = Math.min(row[j] as number, (d[i - 2] as number[])[j - 2] as number + 1)
    }
  }
  return (d[x.length] as number[])[y.length] as number
}

/** The known name a misspelt one most likely meant: a prefix either way, or a few typing slips away. */
function closest (name: string, candidates: string[]): string | undefined {
  const lower = name.toLowerCase()
  const prefixed = candidates.find((c) => c.toLowerCase().startsWith(lower) || lower.startsWith(c.toLowerCase()))
  if (prefixed !== undefined) return prefixed
  const allowed = Math.min(2, Math.floor((name.length - 1) / 3))
  let best: string | undefined
  let bestDistance = allowed + 1
  for (const c of candidates) {
    const dist = distance(name, c)
    if (dist < bestDistance) { best = c; bestDistance = dist }
  }
  return best
}

function describe (e: ErrorObject): string {
  const at = jsonPath(e.instancePath)
  const prefix = (path: string): string => path === '' ? '(top level)' : path
  if (e.keyword === 'additionalProperty' || e.keyword === 'additionalProperties') {
    const field = (e.params as { additionalProperty: string }).additionalProperty
    const known = Object.keys((e.parentSchema as { properties: object }).properties)
    const hint = closest(field, known)
    return `${prefix(at === '' ? field : `${at}.${field}`)}: unknown field${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; known fields: ${known.join(', ')}`
  }
  if (e.keyword === 'enum') return `${prefix(at)}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
  const description = (e.parentSchema as { description?: string }).description
  if ((e.keyword === 'pattern' || e.keyword === 'anyOf') && description !== undefined) return `${prefix(at)}: must be ${description}`
  // YAML reads an unquoted null, ~ or empty value as null, which surprises people writing `- null`.
  const yamlNull = e.keyword !== 'type' || e.data !== null ? ''
    : e.params.type === 'object' ? ' (an empty block: give it fields or remove it)' : ' (YAML read null here: quote the value)'
  const hint = e.keyword === 'type' && description !== undefined ? ` (${description})` : ''
  return `${prefix(at)}: ${e.message as string}${yamlNull}${hint}`
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

function applyOverrides (doc: Record<string, unknown>, o: Overrides): void {
  const block = (name: string): Record<string, unknown> => {
    // A block of the wrong shape stays as it is, for the schema to report: an override never hides it.
    if (doc[name] === undefined || doc[name] === null) doc[name] = {}
    const existing = doc[name]
    return typeof existing === 'object' && !Array.isArray(existing) ? existing as Record<string, unknown> : {}
  }
  if (o.upstream !== undefined) block('upstream').url = o.upstream
  if (o.allowOrigins !== undefined) block('cors').allowedOrigins = o.allowOrigins
  if (o.host !== undefined) block('server').host = o.host
  if (o.port !== undefined) block('server').port = o.port
  if (o.adminPort !== undefined) block('admin').port = o.adminPort
  if (o.logLevel !== undefined) block('log').level = o.logLevel
}

/** Validate a YAML text. `source` names it in messages (a path, or "defaults"). */
export function loadConfigText (text: string, source: string, overrides: Overrides = {}): LoadResult {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (document.errors.length > 0) {
    return { ok: false, errors: document.errors.map((e) => `${source}: YAML ${(e.message.split('\n')[0] as string).replace(/:$/, '')}`) }
  }
  const raw: unknown = document.toJS() ?? {}
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [`${source}: the file must be a YAML mapping (server:, upstream:, cors: …)`] }
  }
  const doc = raw as Record<string, unknown>
  applyOverrides(doc, overrides)
  const valid = validate(doc)
  // The alternatives of a union (anyOf) each fail on their own; the union's one message says it all.
  const schemaErrors = valid ? [] : (validate.errors as ErrorObject[]).filter((e) => !e.schemaPath.includes('/anyOf/')).map(describe)
  const errors = [...schemaErrors, ...securityProblems(doc)]
  if (!valid || errors.length > 0) return { ok: false, errors }
  const config = deepFreeze(doc)
  const bounds = durationProblems(config)
  if (bounds.length > 0) return { ok: false, errors: bounds }
  const snapshot: Snapshot = {
    config,
    cors: compilePolicy(config.cors),
    shadow: config.shadow === undefined ? undefined : compilePolicy(config.shadow),
    routes: compileRoutes(config.routes),
    ms: Object.freeze(durations(config)),
    hash: createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12),
    source
  }
  return { ok: true, snapshot: Object.freeze(snapshot) }
}

/** A configuration file's text, or the reason it cannot be read. */
export async function readConfigFile (path: string): Promise<{ ok: true; text: string } | { ok: false; errors: string[] }> {
  try {
    return { ok: true, text: await readFile(path, 'utf8') }
  } catch (err) {
    return { ok: false, errors: [`${path}: cannot read the file (${(err as NodeJS.ErrnoException).code as string})`] }
  }
}

/** Read and validate a file; a missing path uses the built-in defaults (overrides still apply). */
export async function loadConfig (path: string | undefined, overrides: Overrides = {}): Promise<LoadResult> {
  if (path === undefined) return loadConfigText('', 'defaults', overrides)
  const read = await readConfigFile(path)
  return read.ok ? loadConfigText(read.text, path, overrides) : read
}
