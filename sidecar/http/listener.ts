// The public server that fastify is given (app.ts's serverFactory): plain HTTP/1.1, or, with
// server.tls, TLS with ALPN choosing HTTP/2 or HTTP/1.1 (RFC 9113 §3.2; README, "HTTPS and HTTP/2").
// Both take the same HTTP/1.1 limits; HTTP/2 adds its own bounds (docs/ARCHITECTURE.md, "HTTP/2").
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2'
import type { Snapshot } from '../config/load.ts'
import type { TlsPair } from '../tls.ts'
import { H2Response, isH2, limitRapidResets, markStreamedBody } from './h2.ts'

/** Streams one HTTP/2 connection may have open at once (RFC 9113 §5.1.2); nginx and Go allow 128 and 250. */
export const MAX_CONCURRENT_STREAMS = 100

export type PublicServer = Server | Http2SecureServer
type Listener = (req: IncomingMessage, res: ServerResponse) => void

export function http1Options (snap: Snapshot): ServerOptions {
  const { server } = snap.config
  return {
    maxHeaderSize: server.maxHeaderBytes,
    headersTimeout: snap.ms.headersTimeout,
    // Node checks header and request timeouts on this interval (default 30 s, too coarse for 10 s).
    connectionsCheckingInterval: Math.min(1000, snap.ms.headersTimeout),
    // Node would answer a missing Host with an empty 400; the gate answers it in our JSON.
    requireHostHeader: false,
    keepAliveTimeout: snap.ms.keepAliveTimeout,
    // No cap on receiving a whole request: a 50 MB upload on a slow link is legitimate. Idle
    // bodies are cut by limits.bodyIdleTimeout instead, and slow headers by server.headersTimeout.
    requestTimeout: 0,
    // Node ≥ 24.12: a request without a body gets an already-ended body stream (no stream events).
    optimizeEmptyRequests: true
  }
}

/**
 * Each HTTP/2 connection: closed gracefully (GOAWAY) once idle for server.keepAliveTimeout, as an
 * HTTP/1.1 one is, and closed when its client shows the rapid-reset pattern (http/h2.ts).
 */
function guardSessions (server: Http2SecureServer, idleMs: number): void {
  server.on('session', (session: Http2Session) => {
    session.setTimeout(idleMs, () => { session.close() })
    limitRapidResets(session)
  })
}

export function createPublicServer (snap: Snapshot, tls: TlsPair | undefined, listener: Listener): PublicServer {
  const h1 = http1Options(snap)
  if (tls === undefined) return createServer(h1, listener)
  const server = createSecureServer({
    ...tls.options,
    ...h1,
    allowHTTP1: true,
    // ALPN, h2 first (RFC 7301): a client that offers both gets HTTP/2.
    ALPNProtocols: ['h2', 'http/1.1'],
    // A handshake is held to the same time as the headers that follow it (slow-loris on TLS).
    handshakeTimeout: snap.ms.headersTimeout,
    Http2ServerResponse: H2Response,
    settings: {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      // The same bound as HTTP/1.1's server.maxHeaderBytes (RFC 9113 §6.5.2, SETTINGS_MAX_HEADER_LIST_SIZE).
      maxHeaderListSize: snap.config.server.maxHeaderBytes
    },
    // A connection that keeps opening streams past maxConcurrentStreams is closed after this many
    // refusals (Node's default, stated).
    maxSessionRejectedStreams: 100,
    // A client that neither speaks TLS-ALPN h2 nor HTTP/1.1 is cut after this long.
    unknownProtocolTimeout: snap.ms.headersTimeout
  }, ((req: IncomingMessage, res: ServerResponse) => {
    if (isH2(req)) markStreamedBody(req)
    listener(req, res)
  }) as unknown as Parameters<typeof createSecureServer>[1])
  // (Typed as Node's own response class, which H2Response extends without changing its shape.)
  const secure = server as unknown as Http2SecureServer
  guardSessions(secure, snap.ms.keepAliveTimeout)
  return secure
}

/**
 * Listens, and returns the URL clients reach: fastify names the scheme from its own `https` option,
 * which the sidecar's serverFactory does not use, so with server.tls its `http:` is corrected.
 */
export async function listenPublic (app: { listen: (o: { host: string, port: number }) => Promise<string> }, tls: boolean, host: string, port: number): Promise<string> {
  const listening = await app.listen({ host, port })
  return tls ? listening.replace(/^http:/, 'https:') : listening
}
