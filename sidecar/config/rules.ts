// Rules the schema cannot express: configurations that are refused as insecure or that could never
// work in a browser (DESIGN.md, "Refused as insecure"). Each problem names its path; none is fixed
// silently, because a quietly "corrected" CORS policy is how permissive policies ship.
import { isLoopbackHost, parseOriginEntry } from '../cors/origin.ts'
import type { Config, CorsConfig } from './schema.ts'

/** Fetch "forbidden request-header names": a page can never set them, so allowing them is a mistake. */
const FORBIDDEN_REQUEST_HEADERS = new Set([
  'accept-charset', 'accept-encoding', 'access-control-request-headers', 'access-control-request-method',
  'connection', 'content-length', 'cookie', 'cookie2', 'date', 'dnt', 'expect', 'host', 'keep-alive',
  'origin', 'referer', 'set-cookie', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'via'
])
/** Fetch "forbidden response-header names": never exposed to a page. */
const FORBIDDEN_RESPONSE_HEADERS = new Set(['set-cookie', 'set-cookie2'])
/** Fetch "forbidden method": browsers refuse to send them. */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK'])
/** Fetch normalises these to upper case before the preflight, so a lower-case entry could never match. */
const NORMALISED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

function corsRules (block: CorsConfig, at: string, problems: string[]): void {
  const credentials = block.allowCredentials
  block.allowedOrigins.forEach((entry, i) => {
    const path = `${at}.allowedOrigins[${i}]: "${entry}"`
    const parsed = parseOriginEntry(entry)
    if (!parsed.ok) { problems.push(`${path} ${parsed.error}`); return }
    if (!credentials) return
    if (parsed.value.kind === 'any') {
      problems.push(`${path} with allowCredentials: true is refused: every site could read responses sent with the user's credentials; list the origins instead`)
      return
    }
    const v = parsed.value
    if (v.scheme === 'http' && (v.host === undefined || !isLoopbackHost(v.host))) {
      problems.push(`${path} is plain http with allowCredentials: true, which is refused outside localhost/loopback: anyone on the network path can be that origin`)
    }
  })
  block.allowedMethods.forEach((method, i) => {
    const path = `${at}.allowedMethods[${i}]: "${method}"`
    if (method === '*') return
    if (!TOKEN.test(method)) problems.push(`${path} is not a method name`)
    else if (FORBIDDEN_METHODS.has(method.toUpperCase())) problems.push(`${path} is a forbidden method that browsers never send`)
    else if (method !== method.toUpperCase() && NORMALISED_METHODS.has(method.toUpperCase())) {
      problems.push(`${path} could never match: browsers send ${method.toUpperCase()} in upper case; write "${method.toUpperCase()}"`)
    }
  })
  block.allowedHeaders.forEach((name, i) => {
    const path = `${at}.allowedHeaders[${i}]: "${name}"`
    if (name === '*') return
    const lower = name.toLowerCase()
    if (!TOKEN.test(name)) problems.push(`${path} is not a header name`)
    else if (FORBIDDEN_REQUEST_HEADERS.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) {
      problems.push(`${path} is a forbidden request header that browsers set themselves; remove it`)
    }
  })
  block.exposedHeaders.forEach((name, i) => {
    const path = `${at}.exposedHeaders[${i}]: "${name}"`
    if (name === '*') {
      if (credentials) problems.push(`${path} with allowCredentials: true is refused: browsers treat it as a header literally named "*"; list the headers`)
    } else if (!TOKEN.test(name)) {
      problems.push(`${path} is not a header name`)
    } else if (FORBIDDEN_RESPONSE_HEADERS.has(name.toLowerCase())) {
      problems.push(`${path} can never be exposed to a page (Fetch forbidden response header)`)
    }
  })
}

/** Every problem in a schema-valid configuration, each starting with its path. */
export function securityProblems (config: Config): string[] {
  const problems: string[] = []
  corsRules(config.cors, 'cors', problems)
  if (config.shadow !== undefined) corsRules(config.shadow, 'shadow', problems)
  const seen = new Set<string>()
  config.routes.forEach((route, i) => {
    const path = `routes[${i}].path: "${route.path}"`
    if (/[?#\\]|%|\/\.\.?(\/|$)|\/\//.test(route.path)) {
      problems.push(`${path} must be a plain path without query, fragment, percent-escapes, dot segments or empty segments`)
    }
    if (seen.has(route.path)) problems.push(`${path} is listed twice; give each path one entry with all its methods`)
    seen.add(route.path)
  })
  let upstream: URL | undefined
  try { upstream = new URL(config.upstream.url) } catch { problems.push(`upstream.url: "${config.upstream.url}" is not a URL`) }
  if (upstream !== undefined && (upstream.pathname !== '/' || upstream.search !== '' || upstream.username !== '')) {
    problems.push(`upstream.url: "${config.upstream.url}" must be scheme://host:port only (no path, query or credentials)`)
  }
  return problems
}
