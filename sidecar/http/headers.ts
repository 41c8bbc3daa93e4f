// The header lists of a forwarded exchange, as flat arrays (name, value, …), which undici sends and
// Node writes without building objects. Upstream: the client's lines as received, less hop-by-hop
// headers (RFC 9110 §7.6.1) and what the proxy sets itself. Client: ours (request id, CORS, Vary,
// Connection while draining) first, then the upstream's, less hop-by-hop headers and its own
// Access-Control-* (the sidecar's policy is the only one a browser sees), with Vary merged.
import type { IncomingMessage } from 'node:http'
import { CREDENTIAL_HEADERS } from '../auth/credentials.ts'
import { forwardedHeaders, HOP_BY_HOP } from '../forwarding.ts'

/** Set by the proxy on every forwarded request, so never copied from the client's. */
const SET_BY_PROXY = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id'])

/** Header names a Connection header lists (RFC 9110 §7.6.1): hop-by-hop for this one message. */
function connectionListed (values: string[]): Set<string> {
  const listed = new Set<string>()
  for (const v of values) for (const name of v.split(',')) listed.add(name.trim().toLowerCase())
  return listed
}

export function upstreamRequestHeaders (req: IncomingMessage, trustProxy: boolean, upstreamHost: string, id: string, dropCredentials = false): string[] {
  const raw = req.rawHeaders
  const connection = req.headers.connection
  const listed = connection === undefined ? undefined : connectionListed([connection])
  const out: string[] = []
  // HTTP/2: pseudo-headers (`:path` …) are not fields, and the cookie crumbs of RFC 9113 §8.2.3 go
  // upstream as one Cookie line (which Node has joined with "; ").
  const h2 = req.httpVersionMajor === 2
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || listed?.has(lower) === true || (dropCredentials && CREDENTIAL_HEADERS.has(lower))) continue
    if (h2 && (lower.charCodeAt(0) === 58 || lower === 'cookie')) continue
    out.push(name, raw[i + 1] as string)
  }
  const cookie = req.headers.cookie
  if (h2 && cookie !== undefined) out.push('cookie', cookie)
  out.push('host', upstreamHost)
  // Client-supplied X-Forwarded-* are believed only from a trusted proxy; otherwise replaced.
  for (const [name, value] of Object.entries(forwardedHeaders(req, trustProxy))) out.push(name, value)
  out.push('x-request-id', id)
  return out
}

/** RFC 9110 §12.5.5: one Vary; "*" stays "*", our fields are added once, case-insensitively. */
export function mergeVary (upstream: string[], ours: string): string {
  const existing = upstream.join(',').split(',').map((v) => v.trim()).filter((v) => v !== '')
  if (existing.includes('*')) return '*'
  const lower = new Set(existing.map((v) => v.toLowerCase()))
  for (const v of ours.split(', ')) if (!lower.has(v.toLowerCase())) existing.push(v)
  return existing.join(', ')
}

/** What the client receives: ours, then the upstream's `raw` (undici's flat Buffer list). */
export function clientResponseHeaders (ours: Record<string, string | number | string[] | undefined>, raw: Buffer[]): string[] {
  const out: string[] = []
  const ourVary = ours.vary as string | undefined
  // Ours are single values: x-request-id, the CORS headers, Connection while draining.
  for (const [name, value] of Object.entries(ours)) if (name !== 'vary') out.push(name, String(value))
  const upstream: string[] = []
  const vary: string[] = []
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1')
    const value = (raw[i + 1] as Buffer).toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'vary') vary.push(value)
    else if (lower === 'connection') (connection ??= []).push(value)
    else upstream.push(lower, name, value)
  }
  const listed = connection === undefined ? undefined : connectionListed(connection)
  for (let i = 0; i < upstream.length; i += 3) {
    const lower = upstream[i] as string
    if (lower.startsWith('access-control-') || HOP_BY_HOP.has(lower) || lower === 'x-request-id' || listed?.has(lower) === true) continue
    out.push(upstream[i + 1] as string, upstream[i + 2] as string)
  }
  if (vary.length > 0) out.push('vary', ourVary === undefined ? vary.join(', ') : mergeVary(vary, ourVary))
  else if (ourVary !== undefined) out.push('vary', ourVary)
  return out
}
