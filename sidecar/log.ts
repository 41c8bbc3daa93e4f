// pino options. Personal data passes through this proxy on its way to be redacted, so no log line
// may carry a body, a query string, or a credential header (docs/ARCHITECTURE.md, "The request
// path", step 9). Fastify's own request logging is off; app.ts writes one line per request from
// fields it chooses, and these serializers keep anything else that logs a request or an error from
// leaking the same things.
import pino, { type Logger, type LoggerOptions } from 'pino'
import pretty from 'pino-pretty'
import { pathOnly } from './target.ts'

const SECRET_HEADERS = ['authorization', 'cookie', 'x-api-key', 'proxy-authorization', 'set-cookie']

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    base: { service: 'pai-cors-sidecar' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Belt and braces: nothing below logs headers, but a future `log.info({ req })` must not leak them.
    redact: { paths: SECRET_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `res.headers["${h}"]`]), censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({ method: req.method, path: pathOnly(req.url ?? ''), requestId: req.id }),
      err: pino.stdSerializers.err
    }
  }
}

/**
 * JSON lines for machines; human-readable lines only when a person watches a terminal. The pretty
 * printer formats the same (already redacted) JSON, so it can never show more than the JSON would.
 */
export function createLogger (level: string, destination?: pino.DestinationStream, humanReadable = destination === undefined && process.stdout.isTTY === true): Logger {
  const out = humanReadable ? pretty({ destination: destination ?? 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }) : destination
  return out === undefined ? pino(loggerOptions(level)) : pino(loggerOptions(level), out)
}
