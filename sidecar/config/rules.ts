// Rules the schema cannot express: configurations that are refused as insecure or that could never
// work in a browser (README, "Refused as insecure"). Each problem names its path; none is fixed
// silently, because a quietly "corrected" CORS policy is how permissive policies ship.
import { TOKEN } from '../cors/decide.ts'
import { isLoopbackHost, parseOriginEntry } from '../cors/origin.ts'

// The rules also run on a file that failed the schema, so that one report names every problem
// (docs/ARCHITECTURE.md, "Configuration"): they read the raw document defensively and skip whatever has the wrong shape,
// which the schema errors already name.
type Doc = Record<string, unknown>
const obj = (v: unknown): Doc => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Doc : {})
function strings (v: unknown): [number, string][] {
  return Array.isArray(v) ? v.flatMap((x, i): [number, string][] => typeof x === 'string' ? [[i, x]] : []) : []
}

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

function methodProblem (method: string): string | undefined {
  if (!TOKEN.test(method)) return 'is not a method name'
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) return 'is a forbidden method that browsers never send'
  if (method !== method.toUpperCase() && NORMALISED_METHODS.has(method.toUpperCase())) {
    return `could never match: browsers send ${method.toUpperCase()} in upper case; write "${method.toUpperCase()}"`
  }
  return undefined
}

function corsRules (block: Doc, at: string, problems: string[]): void {
  const credentials = block.allowCredentials === true
  const privateNetwork = block.allowPrivateNetwork === true
  for (const [i, entry] of strings(block.allowedOrigins)) {
    const path = `${at}.allowedOrigins[${i}]: "${entry}"`
    const parsed = parseOriginEntry(entry)
    if (!parsed.ok) { problems.push(`${path} ${parsed.error}`); continue }
    const v = parsed.value
    // Private Network Access exists so that public pages cannot reach private addresses; letting
    // every origin do so would undo it (the same rule as jub0bs/cors).
    if (v.kind === 'any' && privateNetwork) {
      problems.push(`${path} with allowPrivateNetwork: true is refused: every public web page on the internet could reach this private-network service; list the origins that may`)
    }
    if (!credentials) continue
    if (v.kind === 'any') {
      problems.push(`${path} with allowCredentials: true is refused: every site could read responses sent with the user's credentials; list the origins instead`)
    } else if (v.scheme === 'http' && (v.host === undefined || !isLoopbackHost(v.host))) {
      problems.push(`${path} is plain http with allowCredentials: true, which is refused outside localhost/loopback: anyone on the network path can be that origin`)
    }
  }
  for (const [i, method] of strings(block.allowedMethods)) {
    const problem = method === '*' ? undefined : methodProblem(method)
    if (problem !== undefined) problems.push(`${at}.allowedMethods[${i}]: "${method}" ${problem}`)
  }
  for (const [i, name] of strings(block.allowedHeaders)) {
    const path = `${at}.allowedHeaders[${i}]: "${name}"`
    const lower = name.toLowerCase()
    if (name === '*') continue
    if (!TOKEN.test(name)) problems.push(`${path} is not a header name`)
    else if (FORBIDDEN_REQUEST_HEADERS.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) {
      problems.push(`${path} is a forbidden request header that browsers set themselves; remove it`)
    }
  }
  for (const [i, name] of strings(block.exposedHeaders)) {
    const path = `${at}.exposedHeaders[${i}]: "${name}"`
    if (name === '*') {
      if (credentials) problems.push(`${path} with allowCredentials: true is refused: browsers treat it as a header literally named "*"; list the headers`)
    } else if (!TOKEN.test(name)) {
      problems.push(`${path} is not a header name`)
    } else if (FORBIDDEN_RESPONSE_HEADERS.has(name.toLowerCase())) {
      problems.push(`${path} can never be exposed to a page (Fetch forbidden response header)`)
    }
  }
}

/** Every problem the schema cannot see, each starting with its path. `doc` may be schema-invalid. */
export function securityProblems (doc: Doc): string[] {
  const problems: string[] = []
  corsRules(obj(doc.cors), 'cors', problems)
  if (doc.shadow !== undefined) corsRules(obj(doc.shadow), 'shadow', problems)
  const seen = new Set<string>()
  const routes = Array.isArray(doc.routes) ? doc.routes : []
  routes.forEach((route: unknown, i) => {
    const r = obj(route)
    if (typeof r.path === 'string') {
      const path = `routes[${i}].path: "${r.path}"`
      if (/[?#\\]|%|\/\.\.?(\/|$)|\/\//.test(r.path)) {
        problems.push(`${path} must be a plain path without query, fragment, percent-escapes, dot segments or empty segments`)
      }
      if (seen.has(r.path)) problems.push(`${path} is listed twice; give each path one entry with all its methods`)
      seen.add(r.path)
    }
    // The schema already refuses a route method that is not a token; the rest is checked here.
    for (const [j, method] of strings(r.methods).filter(([, m]) => TOKEN.test(m))) {
      const problem = methodProblem(method)
      if (problem !== undefined) problems.push(`routes[${i}].methods[${j}]: "${method}" ${problem}`)
    }
  })
  const url = obj(doc.upstream).url
  if (typeof url === 'string' && /^https?:\/\//.test(url)) {
    let upstream: URL | undefined
    try { upstream = new URL(url) } catch { problems.push(`upstream.url: "${url}" is not a URL`) }
    if (upstream !== undefined && (upstream.pathname !== '/' || upstream.search !== '' || upstream.hash !== '' || upstream.username !== '' || upstream.password !== '')) {
      problems.push(`upstream.url: "${url}" must be scheme://host:port only (no path, query, fragment or credentials)`)
    }
  }
  return problems
}
