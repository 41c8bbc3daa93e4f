// What HTTP/2 changes on the request path (docs/ARCHITECTURE.md, "HTTP/2"): one response class that
// never sends a connection-specific header, the early end of one stream in place of closing a
// connection, and the header count without pseudo-headers.
import { constants, Http2ServerResponse, type Http2ServerRequest, type Http2Session, type ServerHttp2Stream } from 'node:http2'
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

/**
 * The public server's HTTP/2 response (createSecureServer's `Http2ServerResponse` option). Besides
 * the headers, it ends each exchange the way RFC 9113 §8.1 allows: a complete answer sent before
 * the client finished its body (a 413, a 408, an upstream that answered early) is followed by
 * RST_STREAM(NO_ERROR), so the client stops sending, and only this stream ends: the connection and
 * its other streams go on. (HTTP/1.1 closes the connection instead, with a lingering close: body.ts.)
 */
export class H2Response extends Http2ServerResponse {
  constructor (stream: ServerHttp2Stream) {
    super(stream)
    // The stream's own 'finish' (its writable side ended); the response's comes only with the close.
    stream.once('finish', () => { if (!stream.closed && !stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR) })
  }

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
 * An HTTP/2 request's body ends with its stream (END_STREAM), with or without Content-Length: the
 * framing HTTP/1.1 calls chunked (RFC 9113 §8.1). fastify reads a body only when one of the two
 * headers says there is one, so a streamed HTTP/2 body without Content-Length is marked as such;
 * the mark is never forwarded (the upstream request takes the received lines, less hop-by-hop ones).
 */
export function markStreamedBody (req: Http2ServerRequest): void {
  if (req.headers['content-length'] === undefined && !req.stream.endAfterHeaders) req.headers['transfer-encoding'] = 'chunked'
}

/** Header lines as the client sent them, HTTP/2 pseudo-headers (`:method` …) not counted. */
export function headerLines (req: IncomingMessage | Http2ServerRequest): number {
  const raw = req.rawHeaders
  if (!isH2(req)) return raw.length / 2
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58) n++
  return n
}

/** Streams a client may cancel before their answer (and beyond its answered ones) on one connection. */
export const MAX_EARLY_RESETS = 100

/**
 * The rapid-reset pattern (CVE-2023-44487): a client opens streams and cancels each at once, so the
 * server starts work that nobody waits for, without ever exceeding maxConcurrentStreams. A browser
 * cancels a few streams (a page navigating away); a connection whose client has cancelled more than
 * MAX_EARLY_RESETS before their answer, and more than it let finish, is closed with GOAWAY
 * ENHANCE_YOUR_CALM (RFC 9113 §7). Each cancelled stream has already aborted its own upstream
 * exchange (http/relay.ts), so what is bounded here is the work of starting them.
 */
export function limitRapidResets (session: Http2Session): void {
  let cancelled = 0
  let answered = 0
  session.on('stream', (stream: ServerHttp2Stream) => {
    stream.once('close', () => {
      if (stream.rstCode !== constants.NGHTTP2_CANCEL) { answered++; return }
      cancelled++
      if (cancelled > MAX_EARLY_RESETS && cancelled > answered && !session.closed) session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
    })
  })
}
