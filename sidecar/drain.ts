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
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** How long an accepted connection may stay silent once the listener closed (Go: 5 s). */
export const FRESH_GRACE_MS = 5000

/** Node's own link from a socket to the response it is writing (what its closeIdleConnections reads). */
type Tracked = Socket & { _httpMessage?: ServerResponse | null }

export class ConnectionDrain {
  readonly #server: Server
  readonly #sockets = new Set<Tracked>()
  /** Bytes a socket had read when its last answer finished: more since then is a request arriving. */
  readonly #readAtIdle = new WeakMap<Socket, number>()
  #closed = false
  #draining = false

  constructor (server: Server) {
    this.#server = server
    server.on('connection', (socket: Tracked) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    // An upgraded socket is no longer HTTP: the WebSocket proxy (websocket.ts) owns it and closes it
    // with 1001 after the delay. (That proxy listens for 'upgrade' too, so this listener answers nothing.)
    server.on('upgrade', (_req, socket: Tracked) => { this.#sockets.delete(socket) })
    server.closeIdleConnections = () => { this.#closeIdle() }
  }

  /** SIGTERM: from now on, each answer that finishes marks its connection idle from that byte on. */
  start (): void {
    if (this.#draining) return
    this.#draining = true
    for (const socket of this.#sockets) {
      const res = socket._httpMessage
      if (res === undefined || res === null || res.writableEnded) this.#readAtIdle.set(socket, socket.bytesRead)
      else this.#watch(socket, res)
    }
    this.#server.on('request', (_req, res: ServerResponse) => { this.#watch(res.socket as Socket, res) })
  }

  #watch (socket: Socket, res: ServerResponse): void {
    res.once('finish', () => {
      this.#readAtIdle.set(socket, socket.bytesRead)
      // An answer whose headers went out before SIGTERM kept its connection alive: once the
      // listener is closed, close that connection too as soon as it is idle.
      if (this.#closed) setImmediate(() => { this.#closeIfIdle(socket) })
    })
  }

  /** Called by server.close(): closes idle connections, leaves the rest to finish. */
  #closeIdle (): void {
    // Closed without a drain first (a second signal, a test): what is idle now counts as idle.
    this.start()
    this.#closed = true
    for (const socket of this.#sockets) this.#closeIfIdle(socket)
  }

  #closeIfIdle (socket: Tracked): void {
    if (socket.destroyed) return
    const res = socket._httpMessage
    if (res !== undefined && res !== null && !res.writableEnded) return
    const idleAt = this.#readAtIdle.get(socket)
    if (socket.bytesRead > (idleAt ?? 0)) return
    if (idleAt !== undefined) { socket.destroy(); return }
    // Accepted, and not one byte yet: its request may be on the way.
    setTimeout(() => {
      if (socket.bytesRead === 0 && (socket._httpMessage === undefined || socket._httpMessage === null)) socket.destroy()
    }, FRESH_GRACE_MS).unref()
  }
}
