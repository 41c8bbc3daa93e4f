// Compile a validated `cors` block into an immutable matcher. Everything that does not depend on the
// request (header values, sets, the wildcard flags) is computed here once, so the per-request decision
// allocates as little as possible and a reload swaps a whole new policy instead of mutating one.
import { parseOriginEntry, patternMatches, type OriginEntry, type RequestOrigin } from './origin.ts'

/** The `cors` block as the configuration schema delivers it (defaults applied). */
export interface CorsSettings {
  allowedOrigins: string[]
  allowedMethods: string[]
  allowedHeaders: string[]
  exposedHeaders: string[]
  allowCredentials: boolean
  maxAge?: number | undefined
  allowPrivateNetwork: boolean
  enforce: boolean
}

export interface CorsPolicy {
  readonly settings: Readonly<CorsSettings>
  readonly anyOrigin: boolean
  readonly exactOrigins: ReadonlySet<string>
  readonly patterns: readonly Extract<OriginEntry, { kind: 'pattern' }>[]
  readonly anyMethod: boolean
  readonly methods: ReadonlySet<string>
  readonly anyHeader: boolean
  /** Lower-case names. */
  readonly headers: ReadonlySet<string>
  readonly allowMethodsValue: string | undefined
  readonly allowHeadersValue: string | undefined
  readonly exposeHeadersValue: string | undefined
  readonly maxAgeValue: string | undefined
  /** `*` for every origin without credentials: responses do not depend on Origin, so no `Vary: Origin`. */
  readonly staticAny: boolean
  readonly preflightVary: string
}

/** Lower-case, sorted, de-duplicated: the form the README promises for the header lists the sidecar sends. */
export function headerList (names: readonly string[]): string[] {
  return [...new Set(names.map((n) => n.toLowerCase()))].sort()
}

/**
 * Compile settings that already passed validation (config/load.ts). An entry that does not parse is a
 * programming error here, never a reason to fall back to something more permissive.
 */
export function compilePolicy (settings: CorsSettings): CorsPolicy {
  const exact = new Set<string>()
  const patterns: Extract<OriginEntry, { kind: 'pattern' }>[] = []
  let anyOrigin = false
  for (const entry of settings.allowedOrigins) {
    const parsed = parseOriginEntry(entry)
    if (!parsed.ok) throw new Error(`cors.allowedOrigins: "${entry}" ${parsed.error}`)
    const v = parsed.value
    if (v.kind === 'any') anyOrigin = true
    else if (v.kind === 'exact') exact.add(v.entry)
    else patterns.push(v)
  }
  const anyMethod = settings.allowedMethods.includes('*')
  const anyHeader = settings.allowedHeaders.includes('*')
  const headers = headerList(settings.allowedHeaders)
  const exposed = headerList(settings.exposedHeaders)
  const policy: CorsPolicy = {
    settings: Object.freeze({ ...settings }),
    anyOrigin,
    exactOrigins: exact,
    patterns: Object.freeze(patterns),
    anyMethod,
    // Methods are case-sensitive (Fetch normalises only DELETE GET HEAD OPTIONS POST PUT): kept as written.
    methods: new Set(settings.allowedMethods),
    anyHeader,
    headers: new Set(headers),
    allowMethodsValue: settings.allowedMethods.length > 0 ? [...new Set(settings.allowedMethods)].join(', ') : undefined,
    allowHeadersValue: headers.length > 0 ? headers.join(', ') : undefined,
    exposeHeadersValue: exposed.length > 0 ? exposed.join(', ') : undefined,
    maxAgeValue: settings.maxAge === undefined ? undefined : String(settings.maxAge),
    staticAny: anyOrigin && !settings.allowCredentials,
    preflightVary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' +
      (settings.allowPrivateNetwork ? ', Access-Control-Request-Private-Network' : '')
  }
  return Object.freeze(policy)
}

/** Which configured entry allows this origin, if any: exact entries first, then patterns, then `*`. */
export function matchOrigin (policy: CorsPolicy, origin: string, parsed: RequestOrigin): string | undefined {
  if (policy.exactOrigins.has(origin)) return origin
  for (const p of policy.patterns) if (patternMatches(p, parsed)) return p.entry
  return policy.anyOrigin ? '*' : undefined
}
