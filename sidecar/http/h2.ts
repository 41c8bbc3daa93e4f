// What HTTP/2 changes on the request path (docs/ARCHITECTURE.md, "HTTP/2"): one response class that
// never sends a connection-specific header, the early end of one stream in place of closing a
// connection, and the header count without pseudo-headers.
import { constants, Http2ServerResponse, type Http2ServerRequest } from 'node:http2'
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'

/**
 * RFC 9113 §8.2.2: an HTTP/2 message carries no connection-specific header field; Node refuses to
 * send one (ERR_HTTP2_INVALID_CONNECTION_HEADERS). The request path sets some for HTTP/1.1 (a
 * refusal's or the drain's `Connection: close`), and each is dropped here, the one place every
 * HTTP/2 answer passes.
 */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

const allowed = (name: string): boolean => !CONNECTION_SPECIFIC.has(name.toLowerCase())

/** A response header list (an object, or flat name, value, …) without the connection-specific fields. */
export function withoutConnectionHeaders (headers: OutgoingHttpHeaders | readonly string[] | undefined): OutgoingHttpHeaders | string[] | undefined {
  if (headers === undefined) return undefined
  if (Array.isArray(headers)) {
    const out: string[] = []
    for (let i = 0; i < headers.length; i += 2) if (allowed(headers[i] as string)) out.push(headers[i] as string, headers[i + 1] as string)
    return out
  }
  return Object.fromEntries(Object.entries(headers).filter(([name]) => allowed(name)))
}

/** The public server's HTTP/2 response (createSecureServer's `Http2ServerResponse` option). */
export class H2Response extends Http2ServerResponse {
  override setHeader (name: string, value: number | string | readonly string[]): this {
    if (allowed(name)) super.setHeader(name, value)
    return this
  }

  override appendHeader (name: string, value: string | readonly string[]): this {
    if (allowed(name)) super.appendHeader(name, value as string | string[])
    return this
  }

  override writeHead (statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this
  override writeHead (statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders | readonly string[]): this
  override writeHead (statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    // HTTP/2 has no reason phrase (RFC 9113 §8.3.2): a statusMessage is dropped with its warning.
    return super.writeHead(statusCode, withoutConnectionHeaders(typeof a === 'string' ? b : a))
  }
}

export function isH2 (req: IncomingMessage | Http2ServerRequest): req is Http2ServerRequest {
  return req.httpVersionMajor === 2
}

/**
 * An answer sent before the request's body was read (413, 408): RFC 9113 §8.1 lets the server ask
 * the client to stop sending "without error" with RST_STREAM(NO_ERROR) once the response is
 * complete. Only this stream ends; the connection and its other streams go on.
 */
export function endStreamEarly (res: Http2ServerResponse): void {
  const stream = res.stream
  res.once('finish', () => { if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR) })
}

/** Header lines as the client sent them, HTTP/2 pseudo-headers (`:method` …) not counted. */
export function headerLines (req: IncomingMessage | Http2ServerRequest): number {
  const raw = req.rawHeaders
  if (!isH2(req)) return raw.length / 2
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58) n++
  return n
}
