// Loading in two steps. `validate`: YAML → schema (every error, with its path), security rules and
// duration bounds, all reported together → one frozen `Config`. `compile`: a valid `Config` → one frozen
// snapshot. A caller gets either a whole valid result or the complete list of problems: never a partly
// applied or silently corrected configuration (docs/ARCHITECTURE.md, "Configuration").
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { compilePolicy, type CorsPolicy } from '../cors/policy.ts'
import { compileRoutes, type RouteTable } from '../routes.ts'
import { durationProblems, durations, type DurationName } from './durations.ts'
import { authProblems } from './auth-rules.ts'
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
  /** The auth block as JSON ('null' when off): a reload that leaves it as it is keeps its JWKS cache (auth/provider.ts). */
  readonly authKey: string
}

export type LoadResult = { ok: true; snapshot: Snapshot } | { ok: false; errors: string[] }
export type ValidateResult = { ok: true; config: Readonly<Config> } | { ok: false; errors: string[] }

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
const schemaCheck = ajv.compile<Config>(ConfigSchema)

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
  const yamlNull = e.keyword !== 'type' || e.data !== null
    ? ''
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

/** A YAML text as a mapping, or why it is not one. */
function parse (text: string, source: string): { ok: true; doc: Record<string, unknown> } | { ok: false; errors: string[] } {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (document.errors.length > 0) {
    return { ok: false, errors: document.errors.map((e) => `${source}: YAML ${(e.message.split('\n')[0] as string).replace(/:$/, '')}`) }
  }
  const raw: unknown = document.toJS() ?? {}
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [`${source}: the file must be a YAML mapping (server:, upstream:, cors: …)`] }
  }
  return { ok: true, doc: raw as Record<string, unknown> }
}

/**
 * A YAML text → a valid, frozen `Config` with every default filled in, or every problem at once: the
 * schema's, the security rules' and the duration bounds'. `source` names the text in messages (a path,
 * or "defaults").
 */
export function validate (text: string, source: string, overrides: Overrides = {}): ValidateResult {
  const parsed = parse(text, source)
  if (!parsed.ok) return parsed
  const { doc } = parsed
  applyOverrides(doc, overrides)
  const valid = schemaCheck(doc)
  // The alternatives of a union (anyOf) each fail on their own; the union's one message says it all.
  const schemaErrors = valid ? [] : (schemaCheck.errors as ErrorObject[]).filter((e) => !e.schemaPath.includes('/anyOf/')).map(describe)
  const errors = [...schemaErrors, ...securityProblems(doc), ...authProblems(doc), ...durationProblems(doc)]
  if (!valid || errors.length > 0) return { ok: false, errors }
  return { ok: true, config: deepFreeze(doc) }
}

/** A valid `Config` → the snapshot that serves: compiled policies and routes, durations, hash. Cannot fail. */
export function compile (config: Readonly<Config>, source: string): Snapshot {
  const frozen = deepFreeze(config)
  const snapshot: Snapshot = {
    config: frozen,
    cors: compilePolicy(frozen.cors),
    shadow: frozen.shadow === undefined ? undefined : compilePolicy(frozen.shadow),
    routes: compileRoutes(frozen.routes),
    ms: Object.freeze(durations(frozen)),
    hash: createHash('sha256').update(JSON.stringify(frozen)).digest('hex').slice(0, 12),
    source,
    authKey: JSON.stringify(frozen.auth ?? null)
  }
  return Object.freeze(snapshot)
}

/** `validate`, then `compile`. */
export function loadConfigText (text: string, source: string, overrides: Overrides = {}): LoadResult {
  const validated = validate(text, source, overrides)
  return validated.ok ? { ok: true, snapshot: compile(validated.config, source) } : validated
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
