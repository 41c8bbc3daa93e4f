// Origin entries (configuration) and Origin header values (requests).
//
// Browsers compare Access-Control-Allow-Origin with the request's serialized origin byte for byte
// (WHATWG Fetch, "CORS check"; HTML "serialization of an origin"): lower-case scheme and host, no
// default port, no trailing slash, no path. So entries are *validated* against that form and never
// normalised: an entry that could never match is a configuration error, not something to fix quietly.
import { getDomain } from 'tldts'

export type OriginEntry =
  | { kind: 'any'; entry: '*' }
  | { kind: 'exact'; entry: string; scheme: string; host: string }
  /** `suffix` is `.example.com`; `port` is undefined for the scheme's default port, '*' for any. */
  | { kind: 'pattern'; entry: string; scheme: string; suffix: string | undefined; host: string | undefined; port: string | undefined }

export type EntryResult = { ok: true; value: OriginEntry } | { ok: false; error: string }

const SCHEMES = new Set(['http', 'https'])
const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' }
// One DNS label as browsers serialize it: lower case letters, digits, hyphens (IDNs arrive as xn--).
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const IPV6 = /^\[[0-9a-f:.]+\]$/
const PORT = /^[0-9]{1,5}$/

function validHost (host: string): boolean {
  if (IPV6.test(host)) return true
  const labels = host.split('.')
  return labels.every((label) => LABEL.test(label))
}

function validPort (port: string): boolean {
  return PORT.test(port) && !port.startsWith('0') && Number(port) <= 65535
}

function canonicalHost (scheme: string, host: string): string | undefined {
  try {
    return new URL(`${scheme}://${host}`).hostname
  } catch {
    return undefined
  }
}

/**
 * Loopback and localhost hosts, where plain http is as private as https (config/rules.ts allows
 * credentials there).
 */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

type Parsed = EntryResult | { ok: false; error: string; fix: string }

/**
 * Parse one configured `allowedOrigins` entry. The error text completes the sentence
 * `cors.allowedOrigins[2]: "<entry>" …`. Where the entry can be mended, it ends with the one
 * corrected value that would pass every check (`HTTPS://App.example.com/` → "https://app.example.com"),
 * never a half-mended one that a second run would refuse again.
 */
export function parseOriginEntry (entry: string): EntryResult {
  const first = parseOnce(entry)
  if (first.ok || !('fix' in first)) return first
  let candidate = first.fix
  // Each mend removes one problem (case, trailing slash, default port, host spelling): a few rounds
  // reach an entry that passes, or one that cannot be mended, which then gets no suggestion.
  for (let round = 0; round < 4; round++) {
    const next = parseOnce(candidate)
    if (next.ok) return { ok: false, error: `${first.error}: write "${candidate}"` }
    if (!('fix' in next)) break
    candidate = next.fix
  }
  return { ok: false, error: first.error }
}

function parseOnce (entry: string): Parsed {
  const fail = (error: string, fix?: string): Parsed => fix === undefined ? { ok: false, error } : { ok: false, error, fix }
  if (entry === '*') return { ok: true, value: { kind: 'any', entry } }
  if (entry === 'null') return fail('is refused: any sandboxed iframe, file:// page or redirect can send the "null" origin')
  const sep = entry.indexOf('://')
  if (sep <= 0) return fail('is not an origin: write scheme://host[:port], e.g. https://app.example.com')
  const scheme = entry.slice(0, sep)
  let rest = entry.slice(sep + 3)
  if (entry !== entry.toLowerCase()) {
    return fail('has upper case; browsers send origins in lower case, so it could never match', entry.toLowerCase())
  }
  if (!SCHEMES.has(scheme)) return fail(`has scheme "${scheme}"; only http and https origins are supported`)
  if (rest.endsWith('/')) return fail('ends with "/"; an origin has no trailing slash', entry.replace(/\/+$/, ''))
  if (/[/?#@]/.test(rest)) return fail('has a path, query, fragment or user info; an origin is only scheme://host[:port]')

  let port: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon >= 0 && !rest.endsWith(']')) {
    port = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (port !== '*') {
      if (!validPort(port)) return fail(`has an invalid port "${port}"`)
      if (port === DEFAULT_PORT[scheme]) {
        return fail(`writes out the default port :${port}, which browsers omit from the origin`, `${scheme}://${rest}`)
      }
    }
  }

  let suffix: string | undefined
  let host: string | undefined = rest
  // Browsers send hosts as the WHATWG URL parser serializes them (127.1 → 127.0.0.1, IDN → xn--,
  // [0:0::1] → [::1]); an entry written any other way could never match.
  const wildcard = rest.startsWith('*.') ? '*.' : ''
  const canonical = canonicalHost(scheme, rest.slice(wildcard.length))
  if (canonical !== undefined && canonical !== rest.slice(wildcard.length)) {
    return fail(`is not how browsers write this host (they send "${canonical}")`, `${scheme}://${wildcard}${canonical}${port === undefined ? '' : `:${port}`}`)
  }
  if (rest.startsWith('*.')) {
    suffix = rest.slice(1)
    host = undefined
    const base = suffix.slice(1)
    if (!validHost(base) || IPV6.test(base) || /^[0-9.]+$/.test(base)) return fail(`has an invalid host "${base}" after "*."`)
    // tldts knows the Public Suffix List, private section included (github.io, appspot.com …):
    // a wildcard over a public suffix lets anyone who can register a name there in.
    if (getDomain(base, { allowPrivateDomains: true }) === null) {
      return fail(`is a wildcard over a public suffix ("${base}"), which anyone can register under: name your own domain, e.g. "${scheme}://*.example.${base}"`)
    }
  } else if (rest.includes('*')) {
    return fail('has "*" in the wrong place; wildcards are "*" alone, "scheme://*.domain" (leftmost label) or ":*" (any port)')
  } else if (!validHost(rest)) {
    return fail(`has an invalid host "${rest}"`)
  }

  if (host !== undefined && port !== '*') return { ok: true, value: { kind: 'exact', entry, scheme, host } }
  return { ok: true, value: { kind: 'pattern', entry, scheme, suffix, host, port } }
}

/** A request's Origin header split into the parts patterns compare; undefined when it is not a serialized origin. */
export interface RequestOrigin { scheme: string; host: string; port: string | undefined }

const SERIALIZED_ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/([^:/?#@[\]]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$/

export function parseRequestOrigin (value: string): RequestOrigin | undefined {
  const m = SERIALIZED_ORIGIN.exec(value)
  if (m === null) return undefined
  const scheme = m[1] as string
  const port = m[3]
  // A browser never writes a default port, a leading zero or an impossible port: such a value is
  // not a serialized origin, and a `:*` pattern must not treat it as one.
  if (port !== undefined && (!validPort(port) || port === DEFAULT_PORT[scheme])) return undefined
  return { scheme, host: m[2] as string, port }
}

/** Does a pattern entry cover this origin? Exact entries are looked up in a Set instead. */
export function patternMatches (p: Extract<OriginEntry, { kind: 'pattern' }>, o: RequestOrigin): boolean {
  if (o.scheme !== p.scheme) return false
  if (p.port !== '*' && o.port !== p.port) return false
  if (p.host !== undefined) return o.host === p.host
  const suffix = p.suffix as string
  // One or more labels before the suffix, never the apex itself: `https://*.example.com` covers
  // a.example.com and a.b.example.com, not example.com, not evilexample.com.
  if (!o.host.endsWith(suffix) || o.host.length === suffix.length) return false
  return o.host.slice(0, -suffix.length).split('.').every((label) => LABEL.test(label))
}
