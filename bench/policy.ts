// The CORS policy every proxy in `npm run bench` is configured with: the sidecar (bench/harness.ts's
// sidecarConfig), nginx, the node floor and every peer (bench/peers.ts). One place, so that no
// target answers a cheaper policy than the others.
export const ORIGIN = 'https://app.example.com'
export const ORIGINS = [ORIGIN, 'https://*.example.com', 'http://localhost:*', 'https://other.example.org']
export const METHODS = ['POST']
export const HEADERS = ['content-type', 'x-request-id']
export const EXPOSED = ['x-request-id']
export const MAX_AGE = 600
/** No target allows credentials: the sidecar's bench configuration leaves `allowCredentials` off. */
export const CREDENTIALS = false

/**
 * An allowlist entry as a regular expression's source, anchored: `https://*.example.com` matches
 * any subdomain (one label or more), `http://localhost:*` any port or none; exact entries are
 * escaped. The same patterns nginx's map, HAProxy's ACLs and Caddy's matcher use.
 */
export function originSource (origin: string): string {
  return `^${origin.replace(/[.]/g, '\\.').replace('://*\\.', '://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.').replace(/:\*$/, '(:[0-9]+)?')}$`
}

/** The allowlist for the cors middlewares (@fastify/cors, cors, Vite's server.cors): exact strings and RegExps. */
export function originList (origins: readonly string[] = ORIGINS): (string | RegExp)[] {
  return origins.map((o) => o.includes('*') ? new RegExp(originSource(o)) : o)
}

/** The whole allowlist as one alternation, for the C proxies' single regex match. */
export function originAlternation (origins: readonly string[] = ORIGINS): string {
  return `^(${origins.map((o) => originSource(o).slice(1, -1)).join('|')})$`
}
