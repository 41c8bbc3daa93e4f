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

/** No answer is being written on it: Node's own test in its closeIdleConnections(). */
function between (socket: Tracked): boolean {
  const res = socket._httpMessage
  return res === undefined || res === null || res.writableEnded
}

export class ConnectionDrain {
  readonly #server: Server
  readonly #graceMs: number
  readonly #sockets = new Set<Tracked>()
  /** Bytes a socket had read when its last answer finished: more since then is a request arriving. */
  readonly #readAtIdle = new WeakMap<Socket, number>()
  #closed = false
  #draining = false

  constructor (server: Server, graceMs = FRESH_GRACE_MS) {
    this.#server = server
    this.#graceMs = graceMs
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
      if (between(socket)) this.#readAtIdle.set(socket, socket.bytesRead)
      else this.#watch(socket, socket._httpMessage as ServerResponse)
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
