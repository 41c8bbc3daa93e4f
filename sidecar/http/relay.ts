// Forwarding one admitted request: undici's dispatch() on the upstream pool, with a handler that
// writes the upstream's status, headers and body chunks straight to the client's response, counting
// bytes as they pass and with backpressure both ways (a slow client pauses the upstream's body; the
// request body streams at the pace undici sends it). Errors before the answer become the sidecar's
// JSON error with the CORS headers; after it began, the answer is cut short, the only signal left.
// upstream.requestTimeout caps the whole exchange. docs/ARCHITECTURE.md, "The request path".
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { UpstreamDeadlineError, upstreamErrorCode, type ErrorCode } from '../errors.ts'
import { statusClass, UPSTREAM_ERROR_KIND, type Metrics, type UpstreamErrorKind } from '../metrics.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts'

/** What happened on the way to the upstream and back, for the log line and the metrics. */
export interface Forwarded {
  start: number
  status: number | undefined
  ms: number | undefined
  /** Body bytes sent up and relayed back. */
  bytesIn: () => number
  bytesOut: () => number
}

export interface RelayDeps {
  pool: Dispatcher
  metrics: Metrics
  /** host[:port] of upstream.url, the Host of every forwarded request. */
  upstreamHost: string
  trustProxy: boolean
  /** The sidecar's JSON error answer (app.ts), used until the upstream's answer begins. */
  sendError: (reply: FastifyReply, code: ErrorCode) => void
}

export interface Exchange {
  request: FastifyRequest
  reply: FastifyReply
  /** A held body, or the counting stream of a streamed one, or none. */
  body: Buffer | Readable | null
  bytesIn: () => number
  /** Frees the admission slot: once the answer is fully received, the exchange failed, or the client left. */
  release: () => void
}

/** An answer status outside RFC 9110 §15 (100–599): never relayed; it maps to upstream_error like any uncoded error. */
class InvalidStatusError extends Error {
  constructor (status: number) { super(`the upstream answered with status ${status}`) }
}

export function relay (deps: RelayDeps, x: Exchange): Forwarded {
  const { request, reply } = x
  const m = deps.metrics
  const client = reply.raw
  const snap = request.snap
  let relayed = 0
  const f: Forwarded = { start: performance.now(), status: undefined, ms: undefined, bytesIn: x.bytesIn, bytesOut: () => relayed }
  let abort: ((err?: Error) => void) | undefined
  let gone = false
  let responding = false
  let cutOff = false
  let done = false
  const requestTimeout = snap.ms.requestTimeout
  const deadline = setTimeout(() => {
    cutOff = true
    m.upstreamErrors.inc({ kind: 'timeout' })
    request.log.warn({ timeoutMs: requestTimeout, responding }, 'upstream.requestTimeout passed: exchange cut off')
    if (responding) client.destroy(new UpstreamDeadlineError(requestTimeout))
    else abort?.(new UpstreamDeadlineError(requestTimeout))
  }, requestTimeout)
  // A client that went away (or the deadline) ends the exchange: the upstream request is aborted.
  client.once('close', () => {
    gone = true
    clearTimeout(deadline)
    x.release()
    if (!done) abort?.()
  })

  const handler: Dispatcher.DispatchHandler = {
    onConnect: (a) => {
      abort = a
      if (gone) a()
    },
    onHeaders: (status, raw, resume) => {
      if (status < 200) return true // 1xx: informational, not relayed
      if (status > 599) { abort?.(new InvalidStatusError(status)); return false }
      responding = true
      f.status = status
      f.ms = performance.now() - f.start
      m.upstreamDuration.observe({ route: request.route as string, status_class: statusClass(status) }, f.ms / 1000)
      // From here the answer is ours to write: fastify's onResponse still runs on 'finish'.
      reply.hijack()
      client.writeHead(status, clientResponseHeaders(reply.getHeaders(), raw as Buffer[]))
      client.on('drain', resume)
      return true
    },
    onData: (chunk) => {
      relayed += chunk.length
      // false pauses the upstream's body until the client has taken what it was sent.
      return client.write(chunk)
    },
    onComplete: () => {
      done = true
      // The GPU's work is done once its answer is fully received: a slow reader keeps no slot.
      x.release()
      client.end()
    },
    onError: (err) => {
      done = true
      x.release()
      const code = upstreamErrorCode(err)
      const kind = UPSTREAM_ERROR_KIND[code]
      if (responding) {
        // undici reports an answer only once the request body has been sent, so what fails now is
        // the upstream (a reset, a silence past bodyTimeout), the deadline (counted already) or a
        // client that went away, which is not the upstream's failure.
        if (!cutOff && !gone) {
          m.upstreamErrors.inc({ kind: kind as UpstreamErrorKind })
          request.log.warn({ kind }, 'the upstream failed while its response was being relayed: cut off')
        }
        client.destroy(err)
        return
      }
      // Nobody is left to answer (onRequestAbort logs it).
      if (gone) return
      if (kind !== undefined && !cutOff) m.upstreamErrors.inc({ kind })
      // The rest of an unread body is not drained: close the connection after the answer.
      if (kind === undefined || !request.raw.complete) reply.header('connection', 'close')
      deps.sendError(reply, code)
    }
  }
  const raw: IncomingMessage = request.raw
  deps.pool.dispatch({
    path: raw.url as string,
    method: raw.method as Dispatcher.HttpMethod,
    headers: upstreamRequestHeaders(raw, deps.trustProxy, deps.upstreamHost, request.id, request.dropCredentials === true),
    body: x.body
  } as Dispatcher.DispatchOptions, handler)
  return f
}
