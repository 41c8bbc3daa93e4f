// The connection pool to the upstream, with the one retry the proxy makes: a request sent on a
// kept-alive connection that the upstream closed before answering it. HTTP/1.1 cannot tell a client
// whether a server read a request on a connection it was closing (RFC 9112 §9.3.1); when the close
// raced the request on a reused connection and not one byte of an answer came back, the request is
// sent once more, on a fresh connection that nothing else uses, if its body can be sent again (none,
// or a small one already held in memory). Anything else fails as it happened: a streamed body, an
// answer that had begun, a timeout, a refused connect, a second failure. docs/ARCHITECTURE.md,
// "Upstream connections".
import type { Socket } from 'node:net'
import { Client, Pool, type buildConnector, type Dispatcher } from 'undici'

/** A body up to this size, with a declared length, is read into memory first and can be replayed. */
export const REPLAYABLE_BODY_BYTES = 64 * 1024

/** The socket errors of a connection the other side closed or reset. */
const CLOSED = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

export interface UpstreamPoolOptions extends Pool.Options {
  /** Called when a request is sent again; `requestId` is the x-request-id it carries. */
  onRetry: (requestId: string | undefined) => void
}

type Connector = buildConnector.connector
type Opts = Dispatcher.DispatchOptions
type Handler = Dispatcher.DispatchHandler
type ClientOptions = Client.Options & { connect: Connector }

function replayable (body: Opts['body']): boolean {
  return body === undefined || body === null || (Buffer.isBuffer(body) && body.length <= REPLAYABLE_BODY_BYTES) ||
    (typeof body === 'string' && Buffer.byteLength(body) <= REPLAYABLE_BODY_BYTES)
}

/** The request id the proxy put last on every forwarded request (http/headers.ts), or on an object's. */
function requestId (opts: Opts): string | undefined {
  const h = opts.headers as string[] | Record<string, string>
  return Array.isArray(h) ? h[h.length - 1] : h['x-request-id']
}

/** The handlers of undici's request() API, which is how the proxy's requests reach the pool. */
type RequestHandler = Required<Pick<Handler, 'onConnect' | 'onHeaders' | 'onData' | 'onComplete' | 'onError'>>

/**
 * Wraps the handler of one request sent on a reused connection: passes everything through, except
 * an error of the kind above that arrives before any byte of the answer, which it turns into one
 * more attempt on a fresh connection. The caller's handler sees one request either way.
 */
class ReplayOnce implements Handler {
  readonly #inner: RequestHandler
  readonly #opts: Opts
  readonly #sameSocket: () => boolean
  readonly #retry: (opts: Opts, handler: Handler) => void
  #abort: ((err?: Error) => void) | undefined
  #connected = false
  #answered = false
  #retried = false

  constructor (inner: RequestHandler, opts: Opts, sameSocket: () => boolean, retry: (opts: Opts, handler: Handler) => void) {
    this.#inner = inner
    this.#opts = opts
    this.#sameSocket = sameSocket
    this.#retry = retry
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#connected) return
    this.#connected = true
    // Aborting from outside (the client left, the deadline) reaches whichever attempt is running.
    this.#inner.onConnect((err) => { (this.#abort as (err?: Error) => void)(err) })
  }

  /** The first byte of an answer: from here on, a failure is the upstream's to report. */
  onResponseStarted (): void { this.#answered = true }
  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    return this.#inner.onHeaders(statusCode, headers, resume, statusText)
  }

  onData (chunk: Buffer): boolean { return this.#inner.onData(chunk) }
  onComplete (trailers: string[] | null): void { this.#inner.onComplete(trailers) }

  onError (err: Error): void {
    const code = (err as NodeJS.ErrnoException).code
    if (!this.#retried && !this.#answered && code !== undefined && CLOSED.has(code) && this.#sameSocket()) {
      this.#retried = true
      this.#retry(this.#opts, this)
      return
    }
    this.#inner.onError(err)
  }
}

/**
 * One connection of the pool. It knows its current socket (through its connector), so that a
 * request can be told apart as sent on a reused connection: one that already read an answer.
 */
class UpstreamClient extends Client {
  readonly #current: { socket: Socket | undefined }
  readonly #origin: URL
  readonly #options: ClientOptions
  readonly #onRetry: (requestId: string | undefined) => void

  constructor (origin: URL, options: ClientOptions, onRetry: (requestId: string | undefined) => void) {
    const current: { socket: Socket | undefined } = { socket: undefined }
    const connect: Connector = (opts, callback) => options.connect(opts, (...args) => {
      if (args[1] !== null) current.socket = args[1]
      callback(...args)
    })
    super(origin, { ...options, connect })
    this.#current = current
    this.#origin = origin
    this.#options = options
    this.#onRetry = onRetry
  }

  override dispatch (opts: Opts, handler: Handler): boolean {
    const socket = this.#current.socket
    // With one request per connection at a time (pipelining 1), the pool hands a request to a
    // connection only while it is idle, so a live socket here is the one the request goes out on.
    if (socket === undefined || socket.destroyed || socket.bytesRead === 0 || !replayable(opts.body)) return super.dispatch(opts, handler)
    const sameSocket = (): boolean => this.#current.socket === socket
    return super.dispatch(opts, new ReplayOnce(handler as RequestHandler, opts, sameSocket, (o, h) => { this.#replay(o, h) }))
  }

  /** The second attempt, on a connection of its own: never one the upstream may be closing too. */
  #replay (opts: Opts, handler: Handler): void {
    this.#onRetry(requestId(opts))
    const fresh = new Client(this.#origin, this.#options)
    fresh.dispatch(opts, handler)
    // Closes once this one exchange is over (a fresh client's close cannot fail).
    void fresh.close()
  }
}

export function createUpstreamPool (url: string, { onRetry, ...options }: UpstreamPoolOptions): Pool {
  return new Pool(url, {
    ...options,
    factory: (origin, opts) => new UpstreamClient(origin, opts as ClientOptions, onRetry)
  })
}
