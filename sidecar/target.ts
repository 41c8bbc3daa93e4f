// The request target as a client sent it: in origin-form, a path and an optional query (RFC 9112
// §3.2.1). Route matching, WebSocket path matching and the log serializer all look at the path alone.

/** The path of a request target, without its query string. */
export function pathOnly (target: string): string {
  const q = target.indexOf('?')
  return q === -1 ? target : target.slice(0, q)
}
