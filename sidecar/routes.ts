// The route allowlist: only configured path + method pairs reach the upstream (docs/ARCHITECTURE.md,
// "The request path", step 4.5).
// Upstream /metrics, /diagnostics, /healthz and /process/files/uri are simply absent from the defaults.
import { pathOnly } from './target.ts'

export interface Route { path: string; methods: string[] }

interface CompiledRoute { path: string; methods: ReadonlySet<string>; allow: string }

export interface RouteTable {
  readonly exact: ReadonlyMap<string, CompiledRoute>
  /** Prefix routes (paths ending in "/"), longest first so the most specific wins. */
  readonly prefixes: readonly CompiledRoute[]
}

export type RouteMatch =
  | { kind: 'ok'; route: string }
  | { kind: 'not_found' }
  | { kind: 'method_not_allowed'; route: string; allow: string }
  | { kind: 'bad_path' }

export function compileRoutes (routes: readonly Route[]): RouteTable {
  const exact = new Map<string, CompiledRoute>()
  const prefixes: CompiledRoute[] = []
  for (const r of routes) {
    const methods = [...new Set(r.methods)]
    const compiled = { path: r.path, methods: new Set(methods), allow: methods.join(', ') }
    if (r.path.endsWith('/') && r.path !== '/') prefixes.push(compiled)
    else exact.set(r.path, compiled)
  }
  prefixes.sort((a, b) => b.path.length - a.path.length)
  return Object.freeze({ exact, prefixes: Object.freeze(prefixes) })
}

// A path the upstream might resolve differently from us (dot segments, encoded separators or dots,
// backslashes, empty segments) could walk from an allowed prefix to /metrics or /diagnostics.
// We refuse it instead of normalising it. `..` next to a slash is refused even inside a segment
// (`/files/..foo`): a segment that merely starts or ends with dots is not worth the ambiguity.
const UNSAFE_PATH = /\/\.(?:\/|$)|\/\.\.|\.\.\/|%(?:2e|2f|5c)|\\|\/\//i

/** `url` is the request target as received (path and optional query). */
export function matchRoute (table: RouteTable, url: string, method: string): RouteMatch {
  const path = pathOnly(url)
  if (!path.startsWith('/') || UNSAFE_PATH.test(path)) return { kind: 'bad_path' }
  let route = table.exact.get(path)
  if (route === undefined) {
    for (const p of table.prefixes) {
      if (path.startsWith(p.path)) { route = p; break }
    }
  }
  if (route === undefined) return { kind: 'not_found' }
  if (!route.methods.has(method)) return { kind: 'method_not_allowed', route: route.path, allow: route.allow }
  return { kind: 'ok', route: route.path }
}
