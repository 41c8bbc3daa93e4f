// One sidecar for bench/auth.ts, in its own process: `node bench/auth-variant.ts <upstream> <off|jwt|api_key> <issuer> <jwksUrl> <keyFile>`.
// Metrics and info-level request logs on (the product as shipped); only the auth block differs.
// Prints its URL on stdout, then serves until killed.
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { buildPublicApp } from '../sidecar/app.ts'
import { loadConfigText } from '../sidecar/config/load.ts'
import { ConfigStore } from '../sidecar/config/store.ts'
import { createLogger } from '../sidecar/log.ts'
import { createMetrics } from '../sidecar/metrics.ts'

const [upstream, variant, issuer, jwksUrl, keyFile] = process.argv.slice(2) as [string, 'off' | 'jwt' | 'api_key', string, string, string]
const AUTH: Record<typeof variant, string> = {
  off: '',
  jwt: `auth: { jwt: { issuer: "${issuer}", audiences: [deid-api], jwksUrl: "${jwksUrl}" } }`,
  api_key: `auth: { apiKeys: { file: ${keyFile} } }`
}
const auth = AUTH[variant]
const loaded = loadConfigText(`
cors:
  allowedOrigins: [https://app.example.com, "https://*.example.com", "http://localhost:*", https://other.example.org]
  allowedHeaders: [content-type, authorization]
  maxAge: 600
${auth}
`, 'bench', { upstream })
if (!loaded.ok) throw new Error(loaded.errors.join('\n'))
const store = new ConfigStore(loaded.snapshot)
const sink = new Writable({ write (_c, _e, cb) { cb() } })
const metrics = createMetrics(new Registry(), { version: 'bench', config: () => ({ hash: store.current().hash, generation: store.generation }) })
const app = await buildPublicApp({ store, metrics, logger: createLogger('info', sink, false) })
process.stdout.write(`${await app.listen({ host: '127.0.0.1', port: 0 })}\n`)
