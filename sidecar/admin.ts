// The admin application (its own port, never the public one): liveness and readiness for the kubelet.
// /livez checks only that the process answers; /readyz checks what traffic depends on (oauth2-proxy's
// /ping vs /ready split). Metrics and the upstream health poll arrive with the observability issue.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { ConfigStore } from './config/store.ts'

export interface AdminState {
  draining: boolean
}

export interface AdminAppDeps {
  store: ConfigStore
  state: AdminState
  logger: FastifyBaseLogger
}

export function buildAdminApp (deps: AdminAppDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.logger, logController: new LogController({ disableRequestLogging: true }) })
  app.get('/livez', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const checks = {
      config: { ok: true, hash: deps.store.current().hash, generation: deps.store.generation },
      draining: { ok: !deps.state.draining }
    }
    const ready = Object.values(checks).every((c) => c.ok)
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
  return app
}
