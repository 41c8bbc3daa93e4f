// Request bodies on their way to the upstream, never parsed: counted as they stream, or, when small
// and of declared length, held in one Buffer so that undici writes head and body together and the
// request can be sent again (upstream-pool.ts). Both cut a client that stops sending for
// limits.bodyIdleTimeout (slow-loris): 408.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { BodyDeadlineError, BodyIdleError, BodyTooLargeError } from '../errors.ts'
import { REPLAYABLE_BODY_BYTES } from './upstream-pool.ts'

/**
 * Counts a body as it streams, without buffering it. Past `limit` it fails the stream, which aborts
 * the upstream request and becomes a 413 (chunked bodies have no Content-Length to check up front).
 * Once `watchIdle` is called, a client that sends nothing for that long fails it too (slow-loris): 408.
 */
export class ByteCounter extends Transform {
  seen = 0
  readonly #limit: number
  #idle: NodeJS.Timeout | undefined
  constructor (limit: number) {
    super()
    this.#limit = limit
  }

  /** Started only once the request is admitted: a queued client is held back by us, not idle. */
  watchIdle (ms: number): void {
    if (this.writableFinished) return
    this.#idle = setTimeout(() => this.destroy(new BodyIdleError(ms)), ms)
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#idle?.refresh()
    this.seen += chunk.length
    if (this.seen > this.#limit) done(new BodyTooLargeError(this.#limit))
    else done(null, chunk)
  }

  override _flush (done: TransformCallback): void {
    clearTimeout(this.#idle)
    done()
  }

  override _destroy (err: Error | null, done: (err: Error | null) => void): void {
    clearTimeout(this.#idle)
    done(err)
  }
}

/**
 * Reads a small body of declared length into one Buffer. A client that sends nothing for `idleMs`
 * gets a BodyIdleError, and one whose body is not complete within `deadlineMs` a BodyDeadlineError
 * (no slot is held meanwhile, but a connection is: a trickle cannot keep it for ever). Either way
 * the rest is left unread and the answer closes the connection. A client that goes away gets
 * nothing: there is nobody to answer, and fastify's onRequestAbort logs it.
 */
export function collect (payload: Readable, idleMs: number, deadlineMs: number, done: (err: Error | null, body?: Buffer) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  const stop = (): void => {
    clearTimeout(idle)
    clearTimeout(deadline)
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('close', onClose)
  }
  const fail = (err: Error): void => {
    stop()
    payload.pause()
    done(err)
  }
  const idle = setTimeout(() => { fail(new BodyIdleError(idleMs)) }, idleMs)
  const deadline = setTimeout(() => { fail(new BodyDeadlineError(deadlineMs)) }, deadlineMs)
  const onData = (chunk: Buffer): void => {
    idle.refresh()
    chunks.push(chunk)
    size += chunk.length
  }
  const onEnd = (): void => {
    stop()
    done(null, chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size))
  }
  // 'close' before 'end': the client went away mid-body. An aborted request also emits 'error'.
  const onClose = (): void => { stop() }
  payload.on('data', onData)
  payload.once('end', onEnd)
  payload.once('close', onClose)
  payload.on('error', () => undefined)
}

/** How long a connection keeps reading the rest of an unwanted body after its error answer. */
export const LINGER_MS = 2000

/**
 * Answering before a body has arrived (413, 408) and then closing a socket that still has unread
 * bytes makes the kernel send a reset, which can destroy the answer at the client before the page
 * reads it. Like nginx's lingering close: send the answer and a FIN, go on reading (and dropping)
 * what the client still sends, and close once it stops, or after LINGER_MS at most.
 */
export function lingeringClose (socket: Socket): void {
  const s = socket as Socket & { destroySoon?: () => void }
  // Node's server calls destroySoon() once an answer with Connection: close has been written.
  s.destroySoon = () => {
    socket.end()
    const timer = setTimeout(() => socket.destroy(), LINGER_MS)
    socket.once('close', () => clearTimeout(timer))
  }
}

/**
 * fastify's content-type parser for every type: bodies are never parsed. A small one with a
 * declared length is read into one Buffer before it is admitted (undici then writes head and body
 * together, and the request can be sent again if the upstream closes a reused connection on it:
 * upstream-pool.ts). Every other body streams to the upstream as it arrives, counted against
 * limits.maxBodyBytes.
 */
export function bodyParser (req: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: unknown) => void): void {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) <= REPLAYABLE_BODY_BYTES) {
    collect(payload, req.snap.ms.bodyIdleTimeout, req.snap.ms.requestTimeout, done)
    return
  }
  const counter = new ByteCounter(req.snap.config.limits.maxBodyBytes)
  req.bodyCounter = counter
  payload.on('error', (err) => counter.destroy(err))
  done(null, payload.pipe(counter))
}
