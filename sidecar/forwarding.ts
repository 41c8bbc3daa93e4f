// What the HTTP proxy (app.ts) and the WebSocket proxy (websocket.ts) share about the request in
// front of them: the request id, who addressed us how, which headers never travel a hop, and a
// whole error response for a socket that has no fastify reply.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { ERRORS, errorBody, type ErrorCode } from './errors.ts'

/** A client's x-request-id is kept only when it is short and plain, so it is safe to log and echo. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function requestId (req: IncomingMessage): string {
  const id = req.headers['x-request-id']
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID()
}

/**
 * RFC 9110 §7.6.1 hop-by-hop headers, never forwarded in either direction. `expect` too: Node has
 * already answered the client's 100-continue, and undici refuses to send it (curl sends it on large
 * uploads).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'])

/**
 * The last item of a header that Node joined with ", ": the one the proxy in front of us wrote.
 * Items further left came from further away, ultimately from the client, who can write anything.
 */
function last (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  return value.slice(value.lastIndexOf(',') + 1).trim()
}

/** Scheme and host as the client addressed them; X-Forwarded-Proto/Host only from a trusted proxy. */
export function addressed (req: IncomingMessage, trustProxy: boolean): { proto: string; host: string | undefined } {
  const h = req.headers
  // HTTP/2 names the host in :authority (RFC 9113 §8.3.1); a TLS socket (server.tls) is https.
  const host = h.host ?? h[':authority'] as string | undefined
  const proto = (req.socket as TLSSocket).encrypted === true ? 'https' : 'http'
  if (!trustProxy) return { proto, host }
  return { proto: last(h['x-forwarded-proto'] as string | undefined) ?? proto, host: last(h['x-forwarded-host'] as string | undefined) ?? host }
}

/** This server's own origin, for same-origin requests (which browsers also send with Origin). */
export function selfOrigin (req: IncomingMessage, trustProxy: boolean): string | undefined {
  const { proto, host } = addressed(req, trustProxy)
  return host === undefined ? undefined : `${proto.toLowerCase()}://${host.toLowerCase()}`
}

/** X-Forwarded-For/Proto/Host for the upstream: a client's own values only from a trusted proxy. */
export function forwardedHeaders (req: IncomingMessage, trustProxy: boolean): Record<string, string> {
  const peer = req.socket.remoteAddress as string
  const xff = trustProxy ? req.headers['x-forwarded-for'] as string | undefined : undefined
  const { proto, host } = addressed(req, trustProxy)
  const out: Record<string, string> = { 'x-forwarded-for': xff === undefined ? peer : `${xff}, ${peer}`, 'x-forwarded-proto': proto }
  if (host !== undefined) out['x-forwarded-host'] = host
  return out
}

/** A whole HTTP/1.1 error response in our JSON shape, for a socket that has no reply object. */
export function rawError (code: ErrorCode, requestId = '-', opts: { message?: string | undefined; headers?: Record<string, string> } = {}): string {
  const body = errorBody(code, requestId, opts.message)
  const { status } = ERRORS[code]
  const extra = Object.entries(opts.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] as string}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`
}
