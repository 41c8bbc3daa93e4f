// The sidecar's own answers: the JSON error shape of errors.ts, with whatever headers the gate has
// put on the reply (the CORS headers included, so a page can read it).
import type { FastifyReply } from 'fastify'
import { ERRORS, errorBody, type ErrorCode } from '../errors.ts'
import { lingeringClose } from './body.ts'
import { isH2 } from './h2.ts'

/** Retry-After for the 503s of a full or slow queue: short, since a slot frees as soon as one request ends. */
export const RETRY_AFTER_SECONDS = '1'

export function sendError (reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  reply.request.errorCode = code
  // An answer that leaves part of the body unread closes the connection without resetting it.
  // (On HTTP/2 only the stream ends, and the connection's other streams go on: http/h2.ts.)
  const raw = reply.request.raw
  if (reply.getHeader('connection') === 'close' && !raw.complete && !isH2(raw)) lingeringClose(raw.socket)
  return reply.code(ERRORS[code].status).type('application/json; charset=utf-8').send(errorBody(code, reply.request.id, message))
}
