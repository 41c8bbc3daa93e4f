// Refusals outside the gate: what Node handles before a request reaches fastify (a malformed
// request, CONNECT, an Expect it cannot meet), and what fails inside fastify (a body that stopped
// arriving, a request fastify itself refuses, a fault of ours). All in our JSON shape; none logs
// request data. docs/ARCHITECTURE.md, "The request path".
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BodyDeadlineError, BodyIdleError, ERRORS, errorBody, type ErrorCode } from '../errors.ts'
import { rawError } from '../forwarding.ts'
import type { Metrics } from '../metrics.ts'
import { sendError } from './answer.ts'

/** A connection-level failure before any request exists: our JSON shape, no request data logged. */
export function clientErrorHandler (m: Metrics, log: FastifyBaseLogger): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const [code, kind]: [ErrorCode, string] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['request_timeout', 'timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ['headers_too_large', 'header_overflow']
        : ['bad_request', 'malformed']
    m.clientErrors.inc({ kind })
    // Only the parser's code: the error also carries the raw bytes received, which may be personal data.
    log.info({ code: err.code, kind }, 'client error')
    socket.end(rawError(code))
  }
}

/** CONNECT would make this a tunnel: never. An Expect other than 100-continue cannot be met (RFC 9110 §10.1.1). */
export function refuseAtNodeLevel (server: Server): void {
  // HTTP/1.1 hands over the socket; HTTP/2 (RFC 9113 §8.5) a response on the CONNECT's stream.
  server.on('connect', (_req: IncomingMessage, socket: Socket | ServerResponse) => {
    if (socket instanceof Socket) socket.end(rawError('method_not_allowed'))
    else answer(socket, 'method_not_allowed')
  })
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => { answer(res, 'expectation_failed') })
}

/** Our JSON error on a response fastify never saw (on HTTP/2, http/h2.ts drops the Connection). */
function answer (res: ServerResponse, code: ErrorCode): void {
  const body = errorBody(code, '-')
  res.writeHead(ERRORS[code].status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body)
}

export function errorHandler (err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  // A held body that stopped arriving (limits.bodyIdleTimeout) or came too slowly
  // (upstream.requestTimeout): the client's delay, not the upstream's. The rest is not drained.
  if (err instanceof BodyIdleError || err instanceof BodyDeadlineError) { reply.header('connection', 'close'); sendError(reply, 'request_timeout'); return }
  // Fastify's own refusals of a malformed request (e.g. an unparsable Content-Type) are the
  // client's fault: a 400, not a 500. Its message may quote the request, so it is not logged.
  const status = (err as { statusCode?: number }).statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    request.log.info({ code: (err as { code?: string }).code }, 'malformed request')
    sendError(reply, 'bad_request')
    return
  }
  // Anything else that fails is ours: a JSON 500 that still carries the CORS headers, never a crash.
  request.log.error({ err }, 'unexpected error')
  sendError(reply, 'internal_error')
}
