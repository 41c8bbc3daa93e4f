// DEVELOPMENT STAND-IN FOR THE PRIVATE AI CONTAINER — NOT THE REAL PRODUCT.
//
// Speaks the container's HTTP API shape (4.x routes, plus the 3.x `/v3/...`
// POST routes) so the sidecar's tests, its demo and front-end developers can
// run without a licence. Detection is a few regular expressions
// (./detect.ts). Every response carries `x-pai-standin: true` and `GET /`
// says plainly what this is.
//
// Only `node:http`, on purpose: the stand-in must not share a framework with
// the sidecar it is used to test. Request bodies carry personal data and are
// never logged; log lines name the matched route, not the raw path.

import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { WebSocketServer } from 'ws'
import { deidentify, MARKER_PATTERNS, ner, newNumbering, reidentify } from './detect.ts'
import type { DeidentifyOptions, EntityTypeSelector } from './detect.ts'

export const STANDIN_NOTE = 'development stand-in for the Private AI container; not the real product'
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

/** pino-compatible, so a Fastify/pino logger can be passed straight in. */
export interface StandinLogger {
  info(obj: Record<string, unknown>, msg: string): void;
}

export interface StandinOptions {
  /** Simulated model latency, applied to POST routes once the body is read. */
  delayMs?: number;
  logger?: StandinLogger;
  /** Initial `/healthz` state (default true). */
  healthy?: boolean;
  maxBodyBytes?: number;
}

export type StandinServer = http.Server & { setHealthy(healthy: boolean): void; closeWebSockets(): void }

export interface RunningStandin {
  url: string;
  server: StandinServer;
  setHealthy(healthy: boolean): void;
  close(): Promise<void>;
}

type Loc = Array<string | number>
interface Reply {
  status: number;
  body: unknown;
}

/** A request-validation failure, answered FastAPI-style with 422. */
class Invalid extends Error {
  loc: Loc
  type: string
  constructor (loc: Loc, msg: string, type: string) {
    super(msg)
    this.loc = loc
    this.type = type
  }
}

function dict (v: unknown, loc: Loc): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(loc, 'Input should be a valid dictionary', 'dict_type')
  return v as Record<string, unknown>
}

function str (v: unknown, loc: Loc): string {
  if (typeof v !== 'string') throw new Invalid(loc, 'Input should be a valid string', 'string_type')
  return v
}

function bool (v: unknown, loc: Loc): boolean {
  if (typeof v !== 'boolean') throw new Invalid(loc, 'Input should be a valid boolean', 'bool_type')
  return v
}

function list<T> (item: (v: unknown, loc: Loc) => T) {
  return (v: unknown, loc: Loc): T[] => {
    if (!Array.isArray(v)) throw new Invalid(loc, 'Input should be a valid list', 'list_type')
    return v.map((x, i) => item(x, [...loc, i]))
  }
}

function literal<T extends string> (allowed: readonly T[], hint = '') {
  return (v: unknown, loc: Loc): T => {
    if (!allowed.includes(v as T)) throw new Invalid(loc, `Input should be ${allowed.map((a) => `'${a}'`).join(' or ')}${hint}`, 'literal_error')
    return v as T
  }
}

function required<T> (o: Record<string, unknown>, key: string, loc: Loc, parse: (v: unknown, loc: Loc) => T): T {
  if (o[key] === undefined) throw new Invalid([...loc, key], 'Field required', 'missing')
  return parse(o[key], [...loc, key])
}

function optional<T> (o: Record<string, unknown>, key: string, loc: Loc, parse: (v: unknown, loc: Loc) => T): T | undefined {
  return o[key] === undefined ? undefined : parse(o[key], [...loc, key])
}

function maskCharacter (v: unknown, loc: Loc): string {
  if (str(v, loc).length !== 1) throw new Invalid(loc, 'String should have exactly 1 character', 'string_length')
  return v as string
}

function selector (v: unknown, loc: Loc): EntityTypeSelector {
  const o = dict(v, loc)
  return { type: required(o, 'type', loc, literal(['ENABLE', 'DISABLE'] as const)), value: required(o, 'value', loc, list(str)) }
}

function detectionOptions (body: Record<string, unknown>): DeidentifyOptions {
  const loc = ['body']
  return {
    processed_text: optional(body, 'processed_text', loc, (v, l) => {
      const o = dict(v, l)
      return {
        type: optional(o, 'type', l, literal(['MARKER', 'MASK'] as const, ' (the stand-in has no SYNTHETIC mode)')),
        pattern: optional(o, 'pattern', l, literal(MARKER_PATTERNS)),
        mask_character: optional(o, 'mask_character', l, maskCharacter),
      }
    }),
    entity_detection: optional(body, 'entity_detection', loc, (v, l) => ({
      entity_types: optional(dict(v, l), 'entity_types', l, list(selector)),
    })),
  }
}

function textRequest (raw: unknown) {
  const body = dict(raw, ['body'])
  return {
    text: required(body, 'text', ['body'], list(str)),
    linkBatch: optional(body, 'link_batch', ['body'], bool),
    options: detectionOptions(body),
  }
}

const ok = (body: unknown): Reply => ({ status: 200, body })

const TEXT_CONTENT_TYPES = ['text/plain', 'text/csv', 'text/markdown']

function nerText (raw: unknown): Reply {
  const { text, options } = textRequest(raw)
  return ok(text.map((t) => ner(t, options)))
}

// 4.x paths; the 3.x generation served the same handlers under /v3.
const ROUTES: Record<string, (body: unknown) => Reply> = {
  '/process/text': (raw) => {
    const { text, linkBatch, options } = textRequest(raw)
    // link_batch links the inputs, so `[NAME_GIVEN_1]` means the same person across them.
    const numbering = linkBatch ? newNumbering() : undefined
    return ok(text.map((t) => deidentify(t, { ...options, numbering })))
  },
  '/process/files/base64': (raw) => {
    const body = dict(raw, ['body'])
    const file = required(body, 'file', ['body'], dict)
    const data = required(file, 'data', ['body', 'file'], str)
    const contentType = required(file, 'content_type', ['body', 'file'], str)
    const options = detectionOptions(body)
    const mime = contentType.replace(/;.*$/s, '').trim().toLowerCase()
    if (!TEXT_CONTENT_TYPES.includes(mime)) {
      return { status: 422, body: { detail: `content_type ${JSON.stringify(contentType)} is not supported by the stand-in (only ${TEXT_CONTENT_TYPES.join(', ')})` } }
    }
    const compact = data.replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw new Invalid(['body', 'file', 'data'], 'Invalid base64 data', 'value_error')
    const item = deidentify(Buffer.from(compact, 'base64').toString('utf8'), options)
    return ok({ processed_file: Buffer.from(item.processed_text, 'utf8').toString('base64'), ...item })
  },
  '/process/files/uri': (raw) => {
    required(dict(raw, ['body']), 'uri', ['body'], str)
    // Deliberately never touches the file system: this route exists so tests can prove the sidecar blocks it.
    return ok({ standin: true, note: `${STANDIN_NOTE}; files are never read`, result_uri: null, entities: [], entities_present: false })
  },
  '/process/text/reidentify': (raw) => {
    const body = dict(raw, ['body'])
    const processed = required(body, 'processed_text', ['body'], list(str))
    const entities = required(
      body,
      'entities',
      ['body'],
      list((v, loc) => {
        const o = dict(v, loc)
        return { processed_text: required(o, 'processed_text', loc, str), text: required(o, 'text', loc, str) }
      })
    )
    return ok(processed.map((t) => reidentify(t, entities)))
  },
  '/ner/text': nerText,
  '/analyze/text': nerText,
  '/bleep': () => ({ status: 422, body: { detail: 'audio not supported by the stand-in' } }),
}
const POST_ROUTES = new Map(Object.entries(ROUTES).flatMap(([path, route]) => [[path, route], [`/v3${path}`, route]] as const))

const GET_ROUTES = ['/', '/healthz', '/metrics', '/diagnostics']

function statusClass (status: number): string {
  return `${String(status).charAt(0)}xx`
}

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-pai-standin': 'true',
    ...headers,
  })
  res.end(payload)
}

/** Resolves undefined once the body passes `limit` bytes; the rest is discarded unread. */
function readBody (req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.removeAllListeners('data')
        req.resume()
        resolve(undefined)
      } else {
        chunks.push(chunk)
      }
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function parseJson (buf: Buffer): unknown {
  if (buf.length === 0) throw new Invalid(['body'], 'Field required', 'missing')
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch {
    // The parser's message quotes the input, which may be personal data: leave it out.
    throw new Invalid(['body', 0], 'JSON decode error', 'json_invalid')
  }
}

export function createStandin (opts: StandinOptions = {}): StandinServer {
  const { delayMs = 0, logger = { info () {} }, maxBodyBytes = DEFAULT_MAX_BODY_BYTES } = opts
  let healthy = opts.healthy ?? true
  const counts = new Map<string, number>()

  function metrics (): string {
    const lines = [
      `# ${STANDIN_NOTE}`,
      '# HELP http_requests_total Total number of requests by method, status and handler.',
      '# TYPE http_requests_total counter',
    ]
    for (const [key, n] of counts) {
      const [method, status, handler] = key.split('\u0000')
      lines.push(`http_requests_total{method="${method}",status="${status}",handler="${handler}"} ${n}.0`)
    }
    return `${lines.join('\n')}\n`
  }

  async function handle (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method as string
    if (GET_ROUTES.includes(path)) {
      if (method !== 'GET') return send(res, 405, { detail: 'Method Not Allowed' }, { allow: 'GET' })
      if (path === '/healthz') return healthy ? send(res, 200, { status: 'ok' }) : send(res, 503, { status: 'unavailable', standin: true })
      if (path === '/diagnostics') return send(res, 200, { standin: true, note: STANDIN_NOTE, models: [], gpu: null, licence: null })
      if (path === '/metrics') {
        const text = metrics()
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'x-pai-standin': 'true' })
        res.end(text)
        return
      }
      return send(res, 200, { app_version: '4.0.0-standin', standin: true, note: STANDIN_NOTE })
    }
    const route = POST_ROUTES.get(path)
    if (!route) return send(res, 404, { detail: 'Not Found' })
    if (method !== 'POST') return send(res, 405, { detail: 'Method Not Allowed' }, { allow: 'POST' })
    if (Number(req.headers['content-length']) > maxBodyBytes) return tooLarge(res)
    const buf = await readBody(req, maxBodyBytes)
    if (!buf) return tooLarge(res)
    await sleep(delayMs)
    const reply = route(parseJson(buf))
    send(res, reply.status, reply.body)
  }

  function tooLarge (res: ServerResponse): void {
    // Close the connection: the unread remainder of the body must not be parsed as a next request.
    send(res, 413, { detail: `Request body larger than ${maxBodyBytes} bytes` }, { connection: 'close' })
  }

  // `/ws` (the container's WebSocket endpoint, beta since 3.6): each message is one JSON body of
  // POST /process/text, each answer the JSON that route would return (its 422 detail on bad input).
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxBodyBytes })
  wss.on('connection', (ws) => {
    let messages = 0
    ws.on('error', () => {})
    ws.on('message', (data) => {
      messages++
      const route = ROUTES['/process/text'] as (body: unknown) => Reply
      try {
        ws.send(JSON.stringify(route(parseJson(data as Buffer)).body))
      } catch (err) {
        const e = err as Invalid
        ws.send(JSON.stringify({ detail: [{ type: e.type, loc: e.loc, msg: e.message }] }))
      }
    })
    ws.on('close', (code) => logger.info({ handler: '/ws', messages, code }, 'standin websocket'))
  })

  const server = http.createServer((req, res) => {
    const started = performance.now()
    const path = (req.url as string).replace(/[?#].*$/s, '')
    const method = req.method as string
    const handler = GET_ROUTES.includes(path) || POST_ROUTES.has(path) ? path : 'none'
    res.on('finish', () => {
      const key = `${method}\u0000${statusClass(res.statusCode)}\u0000${handler}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
      logger.info({ method, handler, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'standin request')
    })
    handle(req, res, path).catch((err: unknown) => {
      if (err instanceof Invalid) return send(res, 422, { detail: [{ type: err.type, loc: err.loc, msg: err.message }] })
      // Only an aborted upload gets here; there is nobody left to answer.
      res.destroy()
    })
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url as string).replace(/[?#].*$/s, '')
    if (path !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })
  return Object.assign(server, {
    setHealthy (value: boolean) {
      healthy = value
    },
    closeWebSockets () {
      for (const ws of wss.clients) ws.terminate()
    },
  })
}

export function formatUrl (host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

export async function startStandin (opts: StandinOptions & { host?: string; port?: number } = {}): Promise<RunningStandin> {
  const { host = '127.0.0.1', port = 0 } = opts
  const server = createStandin(opts)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    url: formatUrl(host, (server.address() as AddressInfo).port),
    server,
    setHealthy: server.setHealthy,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        // A stand-in need not drain keep-alive or in-flight requests before stopping.
        server.closeAllConnections()
        server.closeWebSockets()
      }),
  }
}

/** `--host`, `--port`, `--delay-ms` for main.ts; throws a readable error on bad input. */
export function parseCli (argv: string[]): { host: string; port: number; delayMs: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'delay-ms': { type: 'string', default: '0' },
    },
  })
  const int = (name: string, raw: string, max: number): number => {
    const n = Number(raw)
    if (!/^\d+$/.test(raw) || n > max) throw new Error(`--${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`)
    return n
  }
  return { host: values.host, port: int('port', values.port, 65535), delayMs: int('delay-ms', values['delay-ms'], 600_000) }
}

/** Request lines on stderr, for main.ts. */
export const stderrLogger: StandinLogger = {
  info (obj, msg) {
    process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`)
  },
}
