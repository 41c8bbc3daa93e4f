// Wiring: logger, config store, the public and admin apps, listen, and graceful shutdown
// (docs/ARCHITECTURE.md, "Shutdown": /readyz 503 and Connection: close on every answer → wait
// shutdown.delay → stop accepting, still serving open connections (drain.ts) → finish in-flight
// requests up to shutdown.timeout → exit 0). Nothing here decides anything about requests.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Server as TlsServer } from 'node:tls'
import type { DestinationStream } from 'pino'
import { Registry } from 'prom-client'
import { buildAdminApp, type AdminState } from './admin.ts'
import { buildPublicApp } from './app.ts'
import { ConnectionDrain } from './drain.ts'
import type { Overrides, Snapshot } from './config/load.ts'
import { Reloader, type ReloadReporter } from './config/reload.ts'
import type { ConfigSource } from './config/source.ts'
import { ConfigStore } from './config/store.ts'
import { startHealthChecks } from './health.ts'
import { createLogger } from './log.ts'
import { createMetrics } from './metrics.ts'
import { listenPublic } from './http/listener.ts'
import { readPair, type TlsPair } from './tls.ts'
import { startRotation, type TlsReporter } from './tls-rotation.ts'

export interface Running {
  publicUrl: string
  adminUrl: string
  /** Start draining; a second call stops at once. */
  shutdown: (reason: string) => void
  /** Resolves with the exit code once everything is closed. */
  done: Promise<number>
}

export interface ServeOptions {
  version: string
  /** Where log lines go (tests); stdout otherwise. */
  destination?: DestinationStream | undefined
  /** The command-line/environment overrides, applied again to every reloaded text. */
  overrides?: Overrides | undefined
  /** Where `snap` came from: started here, every later text reloaded, stopped on close. */
  source?: ConfigSource | undefined
  /** Told about every reload (Kubernetes mode records an Event for it). */
  reporter?: ReloadReporter | undefined
  /** With server.tls: the pair already read (cli/serve.ts checks it before serving); read here otherwise. */
  tls?: TlsPair | undefined
  /** Told about every change of the certificate files (Kubernetes mode records an Event for it). */
  tlsReporter?: TlsReporter | undefined
}

/** server.tls's pair, as given or read now; files that cannot serve refuse to start. */
async function startingPair (snap: Snapshot, given: TlsPair | undefined): Promise<TlsPair | undefined> {
  const files = snap.config.server.tls
  if (files === undefined || given !== undefined) return given
  const read = await readPair(files)
  if (!read.ok) throw new Error(read.errors.join('; '))
  return read.pair
}

export async function serve (snap: Snapshot, opts: ServeOptions): Promise<Running> {
  const logger = createLogger(snap.config.log.level, opts.destination)
  const store = new ConfigStore(snap)
  const state: AdminState = { draining: false }
  const metrics = createMetrics(new Registry(), { version: opts.version, config: () => ({ hash: store.current().hash, generation: store.generation }) })
  const { upstream } = snap.config
  let lastOk: boolean | undefined
  const health = startHealthChecks({
    url: `${upstream.url}${upstream.healthPath}`,
    intervalMs: snap.ms.healthInterval,
    timeoutMs: snap.ms.healthTimeout,
    onResult: (ok) => {
      metrics.upstreamUp.set(ok ? 1 : 0)
      if (ok !== lastOk) logger[ok ? 'info' : 'warn']({ upstream: upstream.url, detail: health.state.detail }, ok ? 'upstream healthy' : 'upstream unhealthy')
      lastOk = ok
    }
  })
  // From SIGTERM on, answers carry Connection: close (draining); once the listener closes, requests
  // on connections still open are served all the same, and idle connections are closed (drain.ts).
  let closing = false
  const tls = await startingPair(snap, opts.tls)
  const publicApp = await buildPublicApp({ store, logger, metrics, tls, draining: () => state.draining, closing: () => closing })
  const connections = new ConnectionDrain(publicApp.server)
  // The certificate follows its files for the life of the process (a restart-only block: its paths do not).
  const tlsFiles = snap.config.server.tls
  const rotation = tls === undefined || tlsFiles === undefined ? undefined : startRotation({ server: publicApp.server as unknown as TlsServer, files: tlsFiles, initial: tls, metrics, log: logger, reporter: opts.tlsReporter })
  const reloader = new Reloader({
    store,
    metrics,
    overrides: opts.overrides ?? {},
    source: snap.source,
    log: logger,
    setLevel: (level) => { logger.level = level },
    reporter: opts.reporter
  })
  opts.source?.start((text) => { reloader.apply(text) }, (problem) => { logger.warn(problem.fields, problem.message) })
  const adminApp = buildAdminApp({ store, state, logger, metrics, health, reloadStatus: () => reloader.status })
  const { server, admin } = snap.config
  const publicUrl = await listenPublic(publicApp, tls !== undefined, server.host, server.port)
  const adminUrl = await adminApp.listen({ host: admin.host, port: admin.port })
  logger.info({ publicUrl, adminUrl, tls: tls === undefined ? undefined : { serial: tls.serial, notAfter: tls.validTo.toISOString() }, upstream: snap.config.upstream.url, config: snap.source, hash: snap.hash, origins: snap.config.cors.allowedOrigins.length }, 'sidecar started')
  if (snap.config.cors.allowedOrigins.length === 0) {
    logger.warn('cors.allowedOrigins is empty: every cross-origin browser request will be refused')
  }

  let finish!: (code: number) => void
  const done = new Promise<number>((resolve) => { finish = resolve })
  // Closing happens once, whichever of the drain and a second signal gets there first.
  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true
      health.stop()
      rotation?.stop()
      await opts.source?.stop()
      await Promise.all([publicApp.close(), adminApp.close()])
    })()
    return closed
  }
  const abortDelay = new AbortController()
  const shutdown = (reason: string): void => {
    if (state.draining) {
      logger.warn({ reason }, 'second signal: stopping now')
      abortDelay.abort()
      connections.closeAll()
      publicApp.websockets.terminateAll()
      void close().then(() => finish(1))
      return
    }
    state.draining = true
    connections.start()
    const { shutdownDelay, shutdownTimeout } = snap.ms
    logger.info({ reason, delayMs: shutdownDelay, timeoutMs: shutdownTimeout }, 'draining: readiness is now 503')
    void (async () => {
      // Keep serving while endpoints and load balancers notice that the pod is not ready; a second
      // signal cuts this short (and then owns the exit).
      try {
        await sleep(shutdownDelay, undefined, { signal: abortDelay.signal })
      } catch {
        return
      }
      const timer = setTimeout(() => {
        logger.warn('shutdown.timeout reached: closing the remaining connections')
        connections.closeAll()
        // Upgraded sockets are no longer the HTTP server's to close.
        publicApp.websockets.terminateAll()
      }, shutdownTimeout)
      timer.unref()
      await close()
      clearTimeout(timer)
      // A second signal while closing owns the exit code (1).
      if (abortDelay.signal.aborted) return
      logger.info('stopped')
      finish(0)
    })()
  }
  return { publicUrl, adminUrl, shutdown, done }
}
