// The catalogue of every response the sidecar generates itself: one code, one status, one message.
// Bodies are JSON `{"error":{"code","message","requestId"}}` (README, "What it does to each request") so a page, a log search and
// an alert all speak of the same thing.
export const ERRORS = {
  bad_request: { status: 400, message: 'The request is malformed.' },
  bad_path: { status: 400, message: 'The request target is not a plain path: dot segments, encoded separators, empty segments and absolute URLs are refused.' },
  unauthorized: { status: 401, message: 'This API needs credentials: a valid bearer token in Authorization, or an API key in x-api-key.' },
  forbidden: { status: 403, message: 'These credentials are valid but do not grant access to this API.' },
  cors_origin_denied: { status: 403, message: 'This origin is not allowed by the CORS policy of this API.' },
  cors_preflight_denied: { status: 403, message: 'The CORS preflight was denied.' },
  origin_required: { status: 403, message: 'A WebSocket upgrade must carry an Origin header on this API.' },
  not_found: { status: 404, message: 'No such route on this API.' },
  method_not_allowed: { status: 405, message: 'This route does not accept that method.' },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  expectation_failed: { status: 417, message: 'Only "Expect: 100-continue" is supported.' },
  payload_too_large: { status: 413, message: 'The request body is larger than this API accepts.' },
  headers_too_large: { status: 431, message: 'The request headers are too large or too many.' },
  rate_limited: { status: 429, message: 'Too many requests from this client; retry after the time in Retry-After.' },
  queue_full: { status: 503, message: 'The de-identification service is at capacity; retry after the time in Retry-After.' },
  queue_timeout: { status: 503, message: 'The request waited too long for the de-identification service; retry after the time in Retry-After.' },
  websocket_limit: { status: 503, message: 'Too many WebSockets are open on this instance; retry after the time in Retry-After.' },
  upgrade_refused: { status: 400, message: 'This request cannot switch protocols; send it without Upgrade.' },
  shutting_down: { status: 503, message: 'This instance is shutting down; retry, and another one will answer.' },
  auth_unavailable: { status: 503, message: 'Credentials cannot be checked now: the identity provider is unreachable; retry after the time in Retry-After.' },
  upstream_unavailable: { status: 502, message: 'The de-identification service could not be reached.' },
  upstream_error: { status: 502, message: 'The de-identification service closed the connection or answered invalidly.' },
  upstream_timeout: { status: 504, message: 'The de-identification service did not answer in time.' },
  internal_error: { status: 500, message: 'The sidecar failed to handle this request.' }
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export function errorBody (code: ErrorCode, requestId: string, message?: string): string {
  return JSON.stringify({ error: { code, message: message ?? ERRORS[code].message, requestId } })
}

/** Raised by the body counter when a streamed body passes limits.maxBodyBytes. */
export class BodyTooLargeError extends Error {
  readonly code = 'PAI_BODY_TOO_LARGE'
  constructor (limit: number) {
    super(`request body exceeds ${limit} bytes`)
  }
}

/** Raised by the body counter when the client sends nothing for limits.bodyIdleTimeout (slow-loris). */
export class BodyIdleError extends Error {
  readonly code = 'PAI_BODY_IDLE'
  constructor (ms: number) {
    super(`no request body bytes for ${ms} ms`)
  }
}

/** Raised when a body held before forwarding is not complete within upstream.requestTimeout. */
export class BodyDeadlineError extends Error {
  readonly code = 'PAI_BODY_DEADLINE'
  constructor (ms: number) {
    super(`the request body did not arrive within ${ms} ms`)
  }
}

/** Raised when upstream.requestTimeout passes before the upstream answered: aborts the exchange (504). */
export class UpstreamDeadlineError extends Error {
  readonly code = 'PAI_UPSTREAM_DEADLINE'
  constructor (ms: number) {
    super(`no answer from the upstream within upstream.requestTimeout (${ms} ms)`)
  }
}

/** Map an error from the upstream request (undici's, or one of ours that ended it) to our code. */
export function upstreamErrorCode (err: unknown): ErrorCode {
  let e: unknown = err
  // A body stream's error may reach us wrapped (as `cause`).
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e instanceof BodyTooLargeError) return 'payload_too_large'
    if (e instanceof BodyIdleError) return 'request_timeout'
    if (e instanceof UpstreamDeadlineError) return 'upstream_timeout'
    const code = (e as NodeJS.ErrnoException).code
    switch (code) {
      case 'ECONNREFUSED': case 'ENOTFOUND': case 'EAI_AGAIN': case 'EHOSTUNREACH': case 'ENETUNREACH':
        return 'upstream_unavailable'
      case 'UND_ERR_CONNECT_TIMEOUT': case 'UND_ERR_HEADERS_TIMEOUT': case 'UND_ERR_BODY_TIMEOUT':
        return 'upstream_timeout'
      case 'ECONNRESET': case 'UND_ERR_SOCKET': case 'EPIPE':
        return 'upstream_error'
    }
    e = e.cause
  }
  return 'upstream_error'
}
