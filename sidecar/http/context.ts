// What the HTTP path learns about one request, on fastify's request object: set by the gate hook,
// the body parser and the relay, read by the access log. docs/ARCHITECTURE.md, "The request path".
import type { Snapshot } from '../config/load.ts'
import type { CorsDecision } from '../cors/decide.ts'
import type { ErrorCode } from '../errors.ts'
import type { WebSocketProxy } from '../websocket.ts'
import type { AuthNote } from './authenticate.ts'
import type { ByteCounter } from './body.ts'
import type { Forwarded } from './relay.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocket passthrough (websocket.ts); server.ts ends its sessions at shutdown.timeout. */
    websockets: WebSocketProxy
  }
  interface FastifyRequest {
    /** The configuration this request is decided and forwarded with, from its first byte to its last. */
    snap: Snapshot
    cors: CorsDecision | undefined
    /** The configured route that matched (a bounded label), or undefined. */
    route: string | undefined
    /** The sidecar's error code, when it answered itself. */
    errorCode: ErrorCode | undefined
    forwarded: Forwarded | undefined
    /** The counting stream of a streamed body (http/body.ts). */
    bodyCounter: ByteCounter | undefined
    /** The report-only policy's decision, when it differs from the active one. */
    shadow: CorsDecision | undefined
    /** The authentication outcome, when auth is configured (http/authenticate.ts). */
    auth: AuthNote | undefined
    /** The authenticated caller (`jwt:<sub>`, `key:<label>`): the rate-limit key in place of the IP. */
    identity: string | undefined
    /** Authorization and x-api-key are not forwarded (auth.forwardCredentials: false). */
    dropCredentials: boolean | undefined
  }
}

/** The request fields above, declared once so that every request has the same shape. */
export const REQUEST_FIELDS = ['snap', 'cors', 'route', 'errorCode', 'forwarded', 'bodyCounter', 'shadow', 'auth', 'identity', 'dropCredentials'] as const
