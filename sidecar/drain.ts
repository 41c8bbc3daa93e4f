// The public server's connections while the sidecar drains (docs/OPERATIONS.md, "Shutdown"). From
// SIGTERM on, every answer carries `Connection: close` (app.ts), so clients move away while the
// listener still accepts. Once the listener closes, nothing that was sent on an open connection is
// refused: a request in progress or arriving is served, and only a connection that is idle is closed.
//
// Node's own closeIdleConnections(), which server.close() calls, also closes a connection that was
// accepted but whose request has not arrived yet, and a kept-alive one whose next request is
// arriving: the client sees a reset for a request it sent. Here, as in Go's http.Server.Shutdown, a
// connection on which bytes arrived since its last answer is left to be served, and one that was
// accepted and is still silent gets a short grace before it counts as idle. shutdown.timeout cuts
// whatever remains (server.ts).
//
// Over TLS (server.tls), the HTTP/1.1 connections are the TLS sockets, and an HTTP/2 connection is a
// session, whose equivalent of `Connection: close` is a graceful GOAWAY (RFC 9113 §6.8): its open
// streams finish, and the client opens its next ones on a new connection.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import { Server as TlsServer, type TLSSocket } from 'node:tls'

/** How long an accepted connection may stay silent once the listener closed (Go: 5 s). */
export const FRESH_GRACE_MS = 5000

/** Node's own link from a socket to the response it is writing (what its closeIdleConnections reads). */
type Tracked = Socket & { _httpMessage?: ServerResponse | null }

/** No answer is being written on it: Node's own test in its closeIdleConnections(). */
function between (socket: Tracked): boolean {
  const res = socket._httpMessage
  return res === undefined || res === null || res.writableEnded
}

export class ConnectionDrain {
  readonly #server: Server
  readonly #graceMs: number
  readonly #sockets = new Set<Tracked>()
  readonly #sessions = new Set<Http2Session>()
  /** Every connection, HTTP/2 ones included (a closed session may leave its socket half-open). */
  readonly #all = new Set<Socket>()
  /** Bytes a socket had read when its last answer finished: more since then is a request arriving. */
  readonly #readAtIdle = new WeakMap<Socket, number>()
  #closed = false
  #killed = false
  #draining = false

  constructor (server: Server, graceMs = FRESH_GRACE_MS) {
    this.#server = server
    this.#graceMs = graceMs
    // Over TLS the HTTP/1.1 parser reads the TLS socket; an HTTP/2 one belongs to its session.
    const tls = server instanceof TlsServer
    server.on(tls ? 'secureConnection' : 'connection', (socket: Tracked) => {
      if (this.#killed) { socket.destroy(); return }
      this.#all.add(socket)
      socket.once('close', () => this.#all.delete(socket))
      if (tls && (socket as TLSSocket).alpnProtocol === 'h2') return
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    server.on('session', (session: Http2Session) => {
      this.#sessions.add(session)
      session.once('close', () => this.#sessions.delete(session))
      // Accepted while draining: its first stream is served, and then the connection ends; once the
      // listener has closed, it is told to go at once (a client may retry a request that a GOAWAY
      // did not take, RFC 9113 §6.8). After closeAll(), nothing is served.
      if (this.#killed) session.destroy()
      else if (this.#closed) session.close()
      else if (this.#draining) session.once('stream', () => { session.close() })
    })
    // An upgraded socket is no longer HTTP: the WebSocket proxy (websocket.ts) owns it and closes it
    // with 1001 after the delay. (That proxy listens for 'upgrade' too, so this listener answers nothing.)
    server.on('upgrade', (_req, socket: Tracked) => { this.#sockets.delete(socket); this.#all.delete(socket) })
    server.closeIdleConnections = () => { this.#closeIdle() }
  }

  /** SIGTERM: from now on, each answer that finishes marks its connection idle from that byte on. */
  start (): void {
    if (this.#draining) return
    this.#draining = true
    for (const session of this.#sessions) session.close()
    for (const socket of this.#sockets) {
      if (between(socket)) this.#readAtIdle.set(socket, socket.bytesRead)
      else this.#watch(socket, socket._httpMessage as ServerResponse)
    }
    // (An HTTP/2 stream's socket is its session's: the GOAWAY above already ends it.)
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => { if (req.httpVersionMajor !== 2) this.#watch(res.socket as Socket, res) })
  }

  #watch (socket: Socket, res: ServerResponse): void {
    res.once('finish', () => {
      this.#readAtIdle.set(socket, socket.bytesRead)
      // An answer whose headers went out before SIGTERM kept its connection alive: once the
      // listener is closed, close that connection too as soon as it is idle.
      if (this.#closed) setImmediate(() => { this.#closeIfIdle(socket) })
    })
  }

  /** shutdown.timeout or a second signal: every connection, served or not, at once (upgraded ones excepted). */
  closeAll (): void {
    this.#killed = true
    for (const session of this.#sessions) session.destroy()
    for (const socket of this.#all) socket.destroy()
  }

  /** Called by server.close(): closes idle connections, leaves the rest to finish. */
  #closeIdle (): void {
    // Closed without a drain first (a second signal, a test): what is idle now counts as idle.
    this.start()
    this.#closed = true
    for (const socket of this.#sockets) this.#closeIfIdle(socket)
  }

  #closeIfIdle (socket: Tracked): void {
    if (socket.destroyed || !between(socket)) return
    const idleAt = this.#readAtIdle.get(socket)
    // Accepted, and no answer yet: its request may be arriving or on its way. Still silent after
    // the grace, it is idle; once its request begins, it is served (and closed after its answer).
    if (idleAt === undefined) {
      setTimeout(() => { if (socket.bytesRead === 0) socket.destroy() }, this.#graceMs).unref()
      return
    }
    // Bytes since its last answer: the next request is arriving.
    if (socket.bytesRead === idleAt) socket.destroy()
  }
}
