// One sidecar for the benchmarks, in its own process: `node bench/variant.ts <upstream> <variant>`.
// full = metrics and info-level request logging on (the product as shipped); bare = both off;
// metrics / logs = only that one on. Prints its URL on stdout, then serves until killed.
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { buildPublicApp } from '../sidecar/app.ts'
import { loadConfigText } from '../sidecar/config/load.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { createMetrics, type Metrics } from '../sidecar/metrics.ts'

const [upstream, variant] = process.argv.slice(2) as [string, 'full' | 'bare' | 'metrics' | 'logs']
const loaded = loadConfigText(`
cors:
  allowedOrigins: [https://app.example.com, "https://*.example.com", "http://localhost:*", https://other.example.org]
  maxAge: 600
`, 'bench', { upstream })
if (!loaded.ok) throw new Error(loaded.errors.join('\n'))
const store = new ConfigStore(loaded.snapshot)

// The same work a real deployment does for its logs, written to a sink instead of a terminal.
const sink = new Writable({ write (_c, _e, cb) { cb() } })
const noop = new Proxy({}, { get: () => () => noop })
const metrics: Metrics = variant === 'full' || variant === 'metrics'
  ? createMetrics(new Registry(), { version: 'bench', config: () => ({ hash: store.current().hash, generation: store.generation }) })
  : new Proxy({} as Metrics, { get: () => noop })
const app = await buildPublicApp({ store, metrics, logger: createLogger(variant === 'full' || variant === 'logs' ? 'info' : 'silent', sink, false) })
process.stdout.write(`${await app.listen({ host: '127.0.0.1', port: 0 })}\n`)
