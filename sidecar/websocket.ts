// WebSocket passthrough to the container's `/ws` (docs/ARCHITECTURE.md, "WebSockets"). WebSockets are outside CORS: any page
// can open one to any host, with the user's cookies, and read what comes back (cross-site WebSocket
// hijacking). So the upgrade's Origin is decided here by the same pure CORS decision as HTTP, and a
// refusal is a real HTTP answer before any handshake: the upstream never hears of it.
//
// The two legs are separate WebSocket connections (ws on both sides), relayed message by message:
// that is what lets the sidecar bound message size, keep text and binary apart, count traffic and
// close each leg with a code it may legally send. Bytes are never parsed, logged or labelled.
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import { AdmissionRejected, type Admission } from './admission.ts'
import { CREDENTIAL_HEADERS } from './auth/credentials.ts'
import type { AuthProvider } from './auth/provider.ts'
import type { Snapshot } from './config/load.ts'
import type { ConfigStore } from './config/store.ts'
import { TOKEN, type CorsDecision } from './cors/decide.ts'
import { ERRORS, upstreamErrorCode, type ErrorCode } from './errors.ts'
import { forwardedHeaders, HOP_BY_HOP, rawError, requestId, selfOrigin } from './forwarding.ts'
import { RETRY_AFTER_SECONDS } from './http/answer.ts'
import { countAuth } from './http/authenticate.ts'
import { gateUpgrade } from './http/gate.ts'
import { UPSTREAM_ERROR_KIND, type Metrics, type UpstreamErrorKind, type WebSocketClosedBy, type WebSocketDirection } from './metrics.ts'
import { pathOnly } from './target.ts'

export interface WebSocketProxyDeps {
  server: Server
  store: ConfigStore
  logger: FastifyBaseLogger
  metrics: Metrics
  admission: Admission
  closing: () => boolean
  trustProxy: boolean
  auth: AuthProvider
}

/**
 * Above this many bytes queued towards one side, reading from the other side pauses until the
 * queue drains, so a slow reader makes TCP push back on a fast writer instead of growing our heap.
 */
export const HIGH_WATER_BYTES = 1024 * 1024
/** Bytes a client may send before the handshake completes (it should send none). */
const MAX_EARLY_BYTES = 64 * 1024
/** How long a refused client may take to read our answer and close. */
const REFUSAL_LINGER_MS = 5000
/** RFC 6455 §4.1: the key is 16 random bytes in base64; §4.4: version 13 (ws also speaks 8). */
const KEY = /^[+/0-9A-Za-z]{22}==$/
const VERSIONS = new Set(['8', '13'])
const WS_ERR_TOO_BIG = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'

type Side = 'client' | 'upstream'

interface Session {
  client: WebSocket
  upstream: WebSocket
  closedBy: WebSocketClosedBy | undefined
}

/** Sec-WebSocket-Protocol as ws parses it: tokens, comma-separated, no empties or duplicates. */
function protocols (value: string | undefined): string[] | undefined {
  if (value === undefined) return []
  const list = value.split(',').map((p) => p.trim())
  if (list.some((p) => !TOKEN.test(p)) || new Set(list).size !== list.length) return undefined
  return list
}

/**
 * RFC 6455 §7.4.1: 1005 (no code) and 1006 (no close frame) are never sent in a Close frame; they
 * only describe what happened to one leg. The other leg is told 1000 for the first; for a leg that
 * vanished, 1001 (going away) towards the upstream and 1011 (unexpected condition) towards the client.
 */
export function closeCodeFor (code: number, from: Side): number {
  if (code === 1005) return 1000
  if (code === 1006) return from === 'client' ? 1001 : 1011
  return code
}

/** What a REST request would forward, minus what belongs to this hop's handshake. */
function upstreamHeaders (req: IncomingMessage, trustProxy: boolean, id: string, dropCredentials: boolean): Record<string, string> {
  // Node treats a request as an upgrade only with `Connection: upgrade`, so the header is there.
  const listed = String(req.headers.connection).toLowerCase().split(',').map((s) => s.trim())
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    // ws writes its own Host, key, version and (when offered) protocols for the upstream leg.
    // Only set-cookie comes as an array, and it means nothing in a request.
    if (typeof value !== 'string' || name === 'host' || name.startsWith('sec-websocket-') || HOP_BY_HOP.has(name) || listed.includes(name)) continue
    if (dropCredentials && CREDENTIAL_HEADERS.has(name)) continue
    out[name] = value
  }
  return { ...out, ...forwardedHeaders(req, trustProxy), 'x-request-id': id }
}

/** Start the closing handshake; a paused leg (back-pressure) would never read the answering Close. */
function shut (leg: WebSocket, code: number, reason: string | Buffer | undefined): void {
  leg.resume()
  leg.close(code, reason)
}

export class WebSocketProxy {
  readonly #deps: WebSocketProxyDeps
  readonly #sessions = new Set<Session>()
  /** Upgrades between the request and an open session (queued or connecting upstream). */
  readonly #pending = new Set<Duplex>()

  constructor (deps: WebSocketProxyDeps) {
    this.#deps = deps
    // Node ≥ 24.9 asks this before treating a request as an upgrade: anything that is not our
    // WebSocket stays an ordinary request for fastify, its route allowlist and its JSON errors.
    // Older Nodes hand every Upgrade request to the listener, which then refuses the others.
    const server = deps.server as Server & { shouldUpgradeCallback: (req: IncomingMessage) => boolean }
    server.shouldUpgradeCallback = (req) => this.wants(req, deps.store.current())
    deps.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => { void this.#upgrade(req, socket, head) })
  }

  /** Open WebSockets. */
  get size (): number { return this.#sessions.size }

  /** Is this request a WebSocket upgrade on the configured path? */
  wants (req: IncomingMessage, snap: Snapshot): boolean {
    const ws = snap.config.websocket
    return ws.enabled && req.method === 'GET' && req.headers.upgrade?.toLowerCase() === 'websocket' && pathOnly(req.url as string) === ws.path
  }

  /** Graceful shutdown: every session is told 1001 "going away" on both legs. */
  closeAll (): void {
    for (const s of this.#sessions) {
      s.closedBy ??= 'shutdown'
      for (const leg of [s.client, s.upstream]) shut(leg, 1001, 'going away')
    }
  }

  /** shutdown.timeout: whatever is still open goes now. */
  terminateAll (): void {
    for (const s of this.#sessions) {
      s.client.terminate()
      s.upstream.terminate()
    }
    for (const socket of this.#pending) socket.destroy()
  }

  async #upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { store, metrics: m, admission, closing, trustProxy } = this.#deps
    const started = performance.now()
    const snap = store.current()
    const ws = snap.config.websocket
    const id = requestId(req)
    const log = this.#deps.logger.child({ requestId: id })
    const origin = req.headers.origin
    let cors: CorsDecision | undefined
    let shadow: CorsDecision | undefined
    // The authentication outcome, when auth is configured: never the credential or the identity.
    let auth: object = {}
    const line = (extra: object): object => ({
      method: req.method,
      route: ws.path,
      websocket: true,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      cors: cors?.outcome,
      corsReason: cors?.reason,
      corsMatched: cors?.matched,
      shadow: shadow?.outcome,
      shadowReason: shadow?.reason,
      ...auth,
      ...extra
    })
    // A reset client must not crash the process; what it means is handled by 'close' below.
    socket.on('error', () => {})
    const refuse = (code: ErrorCode, message?: string, headers: Record<string, string> = {}): void => {
      m.websocketUpgrades.inc({ outcome: code })
      log.info(line({ status: ERRORS[code].status, error: code }), 'websocket')
      // Node's HTTP sockets allow half-open connections, and an upgraded socket has no timeouts:
      // read to the client's FIN, and do not wait for it for ever (it would hold server.close()).
      socket.resume()
      socket.once('end', () => socket.destroy())
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref()
      socket.end(rawError(code, id, { message, headers: { 'x-request-id': id, ...headers } }))
    }

    if (!this.wants(req, snap)) return refuse('upgrade_refused')
    // The checks every request meets (Host, header count, CORS), as the HTTP path meets them.
    const verdict = gateUpgrade(snap, {
      method: 'GET',
      url: req.url as string,
      httpVersion: req.httpVersion,
      host: req.headers.host,
      origin,
      selfOrigin: origin === undefined ? undefined : selfOrigin(req, trustProxy),
      headerCount: req.rawHeaders.length / 2
    })
    cors = verdict.cors
    if (cors !== undefined && verdict.shadow !== undefined) {
      m.shadowDecisions.inc({ active: cors.outcome, shadow: verdict.shadow.outcome })
      if (verdict.shadow.outcome !== cors.outcome) shadow = verdict.shadow
    }
    if (verdict.kind === 'refuse') return refuse(verdict.code, verdict.message)
    if (closing()) return refuse('shutting_down', undefined, { 'retry-after': RETRY_AFTER_SECONDS })
    const offered = protocols(req.headers['sec-websocket-protocol'])
    if (!KEY.test(String(req.headers['sec-websocket-key'])) || !VERSIONS.has(String(req.headers['sec-websocket-version'])) || offered === undefined) {
      return refuse('bad_request', 'The WebSocket handshake is malformed (RFC 6455 §4.1).')
    }
    // The same authentication as HTTP (README, "Authentication"): a browser cannot set headers on a
    // WebSocket, so this suits non-browser clients (x-api-key, or Authorization: Bearer).
    const authenticator = this.#deps.auth.for(snap)
    let dropCredentials = false
    if (authenticator !== undefined) {
      const r = await authenticator.authenticate(req.headers)
      countAuth(m, r)
      auth = { auth: r.ok ? 'accepted' : r.code, authMethod: r.method, authReason: r.reason, authRef: r.ok ? r.ref : undefined }
      if (!r.ok) return refuse(r.code, undefined, r.headers)
      dropCredentials = !r.forwardCredentials
    }
    if (this.#sessions.size + this.#pending.size >= ws.maxConnections) return refuse('websocket_limit', undefined, { 'retry-after': RETRY_AFTER_SECONDS })

    // From here until the handshake, a client that leaves must be noticed: read (and keep) anything
    // it sends, so that its FIN is seen too.
    this.#pending.add(socket)
    let gone = false
    const early: Buffer[] = [head]
    let earlyBytes = head.length
    const onData = (chunk: Buffer): void => {
      early.push(chunk)
      earlyBytes += chunk.length
      if (earlyBytes > MAX_EARLY_BYTES) socket.destroy()
    }
    const onEnd = (): void => { socket.destroy() }
    // Set once the upstream leg is being opened: a client that leaves meanwhile cancels it.
    let cancel = (): void => {}
    const onClose = (): void => { gone = true; cancel() }
    socket.on('data', onData).on('end', onEnd).once('close', onClose)
    const abandoned = (): void => {
      this.#pending.delete(socket)
      m.websocketUpgrades.inc({ outcome: 'abandoned' })
      log.info(line({ aborted: true }), 'websocket')
    }

    let release = (): void => {}
    if (ws.countsAsInFlight) {
      try {
        release = await admission.acquire((withdraw) => socket.once('close', withdraw))
      } catch (err) {
        const reason = (err as AdmissionRejected).reason
        if (reason === 'abandoned') return abandoned()
        this.#pending.delete(socket)
        return refuse(reason === 'full' ? 'queue_full' : 'queue_timeout', undefined, { 'retry-after': RETRY_AFTER_SECONDS })
      }
      // The slot shows in upstream_in_flight_requests, which then stays at most upstream.maxConcurrent.
      m.upstreamInFlight.inc()
      // Called once: by a failed upstream handshake, or when the session's upstream leg closes.
      const free = release
      release = () => { m.upstreamInFlight.dec(); free() }
    }

    const base = new URL(snap.config.upstream.url)
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
    const query = (req.url as string).slice(pathOnly(req.url as string).length)
    const upstream = new WebSocket(new URL(`${ws.upstreamPath}${query}`, base), offered, {
      headers: upstreamHeaders(req, trustProxy, id, dropCredentials),
      perMessageDeflate: false,
      maxPayload: ws.maxMessageBytes,
      followRedirects: false
    })
    let settled = false
    const fail = (code: ErrorCode, message?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      release()
      upstream.terminate()
      this.#pending.delete(socket)
      if (gone) return abandoned()
      // The same classification as the HTTP relay's (metrics.ts).
      if (code !== 'shutting_down') m.upstreamErrors.inc({ kind: UPSTREAM_ERROR_KIND[code] as UpstreamErrorKind })
      refuse(code, message, code === 'shutting_down' ? { 'retry-after': RETRY_AFTER_SECONDS } : {})
    }
    // The upstream is on localhost: its handshake gets upstream.connectTimeout, like a connect.
    const timer = setTimeout(() => fail('upstream_timeout'), snap.ms.connectTimeout)
    cancel = () => fail('upstream_error')
    // Classified as the HTTP relay classifies undici's errors (errors.ts).
    upstream.on('error', (err) => { fail(upstreamErrorCode(err)) })
    // A container without /ws (before 3.6) answers 404; a refusal is the upstream's, not the client's.
    upstream.on('unexpected-response', (_r, res) => {
      res.resume()
      fail('upstream_error', `The de-identification service refused the WebSocket handshake (HTTP ${res.statusCode as number}).`)
    })
    upstream.once('open', () => {
      // A client that left before `cancel` was set (between admission and connect) is caught here.
      if (gone || closing()) return fail('shutting_down')
      settled = true
      clearTimeout(timer)
      socket.off('data', onData).off('end', onEnd).off('close', onClose)
      this.#pending.delete(socket)
      const server = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        perMessageDeflate: false,
        maxPayload: ws.maxMessageBytes,
        // The client gets the subprotocol the upstream chose, so both legs speak the same one.
        // (ws asks only when the client offered some, and then the upstream had to pick one.)
        handleProtocols: () => upstream.protocol
      })
      // Validated above, so ws completes the handshake (synchronously: nothing is lost meanwhile).
      server.handleUpgrade(req, socket, Buffer.concat(early), (client) => {
        m.websocketUpgrades.inc({ outcome: 'accepted' })
        this.#relay(client, upstream, snap, release, (extra) => log.info(line({ status: 101, ...extra }), 'websocket'))
      })
    })
  }

  #relay (client: WebSocket, upstream: WebSocket, snap: Snapshot, release: () => void, logLine: (extra: object) => void): void {
    const m = this.#deps.metrics
    const session: Session = { client, upstream, closedBy: undefined }
    this.#sessions.add(session)
    m.websocketConnections.inc()
    const opened = performance.now()
    const count = { to_upstream: { messages: 0, bytes: 0 }, to_client: { messages: 0, bytes: 0 } }
    const codes: { client?: number; upstream?: number } = {}
    const tooBig: { client?: boolean; upstream?: boolean } = {}

    // Data messages in either direction keep a session alive; pings do not (a GPU slot is held).
    const idle = setTimeout(() => {
      session.closedBy ??= 'idle'
      for (const leg of [client, upstream]) shut(leg, 1001, 'idle timeout')
    }, snap.ms.websocketIdleTimeout)

    const pipe = (from: WebSocket, to: WebSocket, direction: WebSocketDirection): void => {
      let paused = false
      from.on('message', (data: RawData, isBinary: boolean) => {
        idle.refresh()
        const bytes = (data as Buffer).length
        count[direction].messages++
        count[direction].bytes += bytes
        m.websocketMessages.inc({ direction })
        m.websocketBytes.inc({ direction }, bytes)
        // Once the other leg is closing, there is nobody to deliver to.
        if (to.readyState !== WebSocket.OPEN) return
        to.send(data, { binary: isBinary }, () => {
          if (paused && to.bufferedAmount < HIGH_WATER_BYTES) { paused = false; from.resume() }
        })
        if (!paused && to.bufferedAmount >= HIGH_WATER_BYTES) { paused = true; from.pause() }
      })
    }
    pipe(client, upstream, 'to_upstream')
    pipe(upstream, client, 'to_client')

    const closed = (side: Side, other: WebSocket) => (code: number, reason: Buffer): void => {
      codes[side] = code
      if (side === 'upstream') release()
      session.closedBy ??= tooBig[side] === true ? 'message_too_big' : side
      if (tooBig[side] === true) shut(other, 1009, 'message too big')
      else if (code === 1006) shut(other, closeCodeFor(code, side), side === 'client' ? 'client went away' : 'upstream connection lost')
      else shut(other, closeCodeFor(code, side), code === 1005 ? undefined : reason)
      if (codes.client === undefined || codes.upstream === undefined) return
      clearTimeout(idle)
      this.#sessions.delete(session)
      m.websocketConnections.dec()
      m.websocketCloses.inc({ closed_by: session.closedBy })
      // Codes and counts only: never a message, never a close reason (an application may put data there).
      logLine({
        durationMs: Math.round(performance.now() - opened),
        closedBy: session.closedBy,
        clientCode: codes.client,
        upstreamCode: codes.upstream,
        messagesIn: count.to_upstream.messages,
        messagesOut: count.to_client.messages,
        bytesIn: count.to_upstream.bytes,
        bytesOut: count.to_client.bytes
      })
    }
    // ws has already answered a protocol error with the right Close code (1002, 1007, 1009);
    // what is left is to remember that an oversized message was the cause.
    client.on('error', (err) => { if ((err as NodeJS.ErrnoException).code === WS_ERR_TOO_BIG) tooBig.client = true })
    upstream.on('error', (err) => { if ((err as NodeJS.ErrnoException).code === WS_ERR_TOO_BIG) tooBig.upstream = true })
    client.on('close', closed('client', upstream))
    upstream.on('close', closed('upstream', client))
  }
}
