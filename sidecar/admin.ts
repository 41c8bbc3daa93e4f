// The admin application (its own port, never the public one): metrics and probes.
// /livez checks only that the process answers; /readyz checks what traffic depends on (oauth2-proxy's
// /ping vs /ready split): a loaded configuration, a recently healthy upstream, and not draining.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { ReloadStatus } from './config/reload.ts'
import type { ConfigStore } from './config/store.ts'
import type { HealthChecker } from './health.ts'
import { exposition, type Metrics } from './metrics.ts'

export interface AdminState {
  draining: boolean
}

export interface AdminAppDeps {
  store: ConfigStore
  state: AdminState
  logger: FastifyBaseLogger
  metrics: Metrics
  health: HealthChecker
  reloadStatus: () => ReloadStatus
}

export function buildAdminApp (deps: AdminAppDeps): FastifyInstance {
  // Probes and scrapes arrive every few seconds: no request log lines for them.
  const app = Fastify({ loggerInstance: deps.logger, logController: new LogController({ disableRequestLogging: true }) })
  app.get('/livez', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const snap = deps.store.current()
    const upstream = deps.health.state
    const checks = {
      // A rejected reload is reported here but does not make the pod unready: the last good
      // configuration still serves (docs/ARCHITECTURE.md, "Reload").
      config: { ok: true, source: snap.source, hash: snap.hash, generation: deps.store.generation, lastReload: deps.reloadStatus() },
      upstream: { ok: deps.health.healthy(), url: `${snap.config.upstream.url}${snap.config.upstream.healthPath}`, detail: upstream.detail },
      draining: { ok: !deps.state.draining }
    }
    const ready = checks.config.ok && checks.upstream.ok && checks.draining.ok
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
  app.get('/metrics', async (request, reply) => {
    const { contentType, body } = await exposition(deps.metrics.registry, request.headers.accept)
    return reply.type(contentType).send(body)
  })
  return app
}
