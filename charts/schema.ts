// Generates charts/pai-cors-sidecar/values.schema.json and files/sidecar-blocks.json (`npm run
// chart:schema`; test/chart-schema.test.ts fails when a committed file differs). The blocks that carry
// the sidecar's own field names are taken from the sidecar's schema (sidecar/config/schema.ts), so a
// field added to the sidecar cannot be forgotten in the chart, and a typo in values.yaml fails at
// `helm install` the way it fails in the sidecar. The chart's own keys are declared here, strict
// (additionalProperties: false) throughout. sidecar-blocks.json names those blocks, and the ones the
// sidecar applies only at start (RESTART_ONLY), for the templates that build the ConfigMap and the
// restart checksum from them (_helpers.tpl).
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Type } from '@sinclair/typebox'
import { RESTART_ONLY } from '../sidecar/config/reload.ts'
import { ConfigSchema } from '../sidecar/config/schema.ts'

export const SCHEMA_PATH = fileURLToPath(new URL('./pai-cors-sidecar/values.schema.json', import.meta.url))
export const BLOCKS_PATH = fileURLToPath(new URL('./pai-cors-sidecar/files/sidecar-blocks.json', import.meta.url))

/** Keys that the chart sets itself: the listen hosts, the upstream URL (the container is on localhost), and server.tls (from `tls`). */
const CHART_OWNED: Record<string, string[]> = { server: ['host', 'tls'], admin: ['host'], upstream: ['url'] }

/**
 * An origin as a browser serializes it (lower case, no path, no trailing slash), or one of the
 * sidecar's wildcard forms. The sidecar checks more (public suffixes, IDNs, IPv4 forms) and the
 * chart's tests feed the rendered ConfigMap to its --check-config; this catches the usual mistakes
 * (a path, a trailing slash, upper case, a missing scheme) at `helm install`.
 */
export const ORIGIN_PATTERN = '^(\\*|https?://(\\*\\.)?[a-z0-9-]+(\\.[a-z0-9-]+)*(:([0-9]{1,5}|\\*))?|https?://\\[[0-9a-f:.]+\\](:([0-9]{1,5}|\\*))?)$'

type Json = Record<string, any>

/**
 * The chart's JSON Schema from a TypeBox one: no TypeBox symbols, no defaults (values.yaml has them),
 * and a field with a default is not required, since the sidecar fills it in; one without a default
 * (a route's path and methods) stays required.
 */
function plain (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(plain)
  if (schema === null || typeof schema !== 'object') return schema
  const source = schema as Json
  const out: Json = Object.fromEntries(Object.entries(source).filter(([key]) => key !== 'default').map(([key, value]) => [key, plain(value)]))
  if (Array.isArray(source.required)) {
    out.required = source.required.filter((key: string) => source.properties[key].default === undefined)
    if (out.required.length === 0) delete out.required
  }
  return out
}

function corsBlock (schema: Json): Json {
  schema.properties.allowedOrigins.items.pattern = ORIGIN_PATTERN
  // Fetch §3.2.5: with credentials a browser rejects Access-Control-Allow-Origin: *. The sidecar refuses
  // the combination; refusing it here too makes `helm install` fail before a pod is scheduled.
  // Private Network Access: "*" would let every public page reach a private-network address.
  const refuseAny = (flag: string): Json => ({
    if: { properties: { [flag]: { const: true } }, required: [flag] },
    then: { properties: { allowedOrigins: { items: { not: { const: '*' }, description: `"*" cannot be combined with ${flag}` } } } }
  })
  schema.allOf = [refuseAny('allowCredentials'), refuseAny('allowPrivateNetwork')]
  return schema
}

/** Where the chart mounts the API key Secret: a directory of its own (never subPath, so a rotation reaches the pod). */
export const API_KEYS_DIR = '/etc/pai-cors-sidecar-api-keys'

/**
 * The chart mounts the API key file from a Secret and sets auth.apiKeys.file itself, so its values
 * name the Secret (and the key in it) instead of a path.
 */
function authBlock (schema: Json): Json {
  schema.properties.apiKeys = {
    type: 'object',
    additionalProperties: false,
    required: ['existingSecret'],
    properties: {
      existingSecret: { type: 'string', minLength: 1, description: 'a Secret you create holding the key file (SHA-256 digests, never the keys)' },
      key: { type: 'string', minLength: 1, description: 'the Secret key holding the file (default keys)' }
    }
  }
  return schema
}

function sidecarBlocks (): Json {
  const blocks: Json = {}
  for (const [name, block] of Object.entries(ConfigSchema.properties)) {
    const schema = plain(block) as Json
    for (const key of CHART_OWNED[name] ?? []) delete schema.properties[key]
    blocks[name] = schema
  }
  blocks.cors = corsBlock(blocks.cors)
  blocks.shadow = corsBlock(blocks.shadow)
  blocks.auth = authBlock(blocks.auth)
  return blocks
}

const Strict = { additionalProperties: false } as const
const str = () => Type.String()
const image = Type.Object({
  repository: Type.String({ minLength: 1 }),
  tag: Type.String(),
  digest: Type.String({ pattern: '^(sha256:[0-9a-f]{64})?$' }),
  pullPolicy: Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')])
}, Strict)
const quantity = Type.Union([Type.String({ pattern: '^[0-9.]+([eE][0-9]+|[numkKMGTPE]i?)?$' }), Type.Number({ minimum: 0 })])
const resources = Type.Object({
  requests: Type.Optional(Type.Record(Type.String(), quantity)),
  limits: Type.Optional(Type.Record(Type.String(), quantity)),
  claims: Type.Optional(Type.Array(Type.Object({ name: Type.String() })))
}, Strict)
const probe = (extra = {}) => Type.Object({
  ...extra,
  periodSeconds: Type.Integer({ minimum: 1 }),
  timeoutSeconds: Type.Integer({ minimum: 1 }),
  failureThreshold: Type.Integer({ minimum: 1 })
}, Strict)
const labels = Type.Record(Type.String(), Type.String())
const objects = Type.Array(Type.Object({}))
const anyObject = Type.Object({})
const nullableSeconds = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])
const monitor = Type.Object({ enabled: Type.Boolean(), interval: Type.String({ pattern: '^[0-9]+(ms|s|m|h)$' }), labels }, Strict)

function chartOwn (): Json {
  return plain(Type.Object({
    nameOverride: str(),
    fullnameOverride: str(),
    commonLabels: labels,
    replicaCount: Type.Integer({ minimum: 0 }),
    revisionHistoryLimit: Type.Integer({ minimum: 0 }),
    strategy: anyObject,
    imagePullSecrets: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, Strict)),
    podAnnotations: labels,
    podLabels: labels,
    priorityClassName: str(),
    runtimeClassName: str(),
    nodeSelector: labels,
    tolerations: objects,
    affinity: anyObject,
    topologySpreadConstraints: objects,
    terminationGracePeriodSeconds: Type.Optional(nullableSeconds),
    podSecurityContext: anyObject,
    privateai: Type.Object({
      image,
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      license: Type.Object({ existingSecret: Type.String({ minLength: 1, description: 'a Secret you create with the licence file' }), key: Type.String({ minLength: 1 }) }, Strict),
      env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
      extraEnv: objects,
      gpu: Type.Object({
        enabled: Type.Boolean(),
        resourceName: Type.String({ pattern: '^[a-z0-9.-]+/[a-zA-Z0-9._-]+$', description: 'an extended resource such as nvidia.com/gpu' }),
        count: Type.Integer({ minimum: 1 }),
        tolerate: Type.Boolean()
      }, Strict),
      resources,
      shm: Type.Object({ sizeLimit: quantity }, Strict),
      startupProbe: probe(),
      readinessProbe: probe(),
      livenessProbe: probe({ enabled: Type.Boolean() }),
      preStopSleepSeconds: Type.Optional(nullableSeconds),
      securityContext: anyObject,
      metrics: Type.Object({ scrape: Type.Boolean() }, Strict)
    }, Strict),
    sidecar: Type.Object({
      image,
      native: Type.Boolean({ description: 'native sidecar container (Kubernetes >= 1.29)' }),
      configSource: Type.Union([Type.Literal('file'), Type.Literal('kubernetes')]),
      resources,
      nodeOptions: Type.String({ description: 'NODE_OPTIONS of the sidecar container; empty for none' }),
      extraEnv: objects,
      securityContext: anyObject
    }, Strict),
    service: Type.Object({
      type: Type.Union([Type.Literal('ClusterIP'), Type.Literal('NodePort'), Type.Literal('LoadBalancer')]),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      httpsPort: Type.Integer({ minimum: 1, maximum: 65535, description: 'the Service port with tls.enabled' }),
      annotations: labels,
      labels
    }, Strict),
    // HTTPS on the sidecar's public port (README, "HTTPS and HTTP/2"): a kubernetes.io/tls Secret,
    // given or issued by cert-manager, mounted as a directory so that renewals reach the sidecar.
    tls: Type.Object({
      enabled: Type.Boolean(),
      existingSecret: Type.String({ description: 'a kubernetes.io/tls Secret (tls.crt, tls.key); with certManager, the Secret it writes' }),
      minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')]),
      certManager: Type.Object({
        enabled: Type.Boolean(),
        issuerRef: Type.Object({ name: Type.String(), kind: Type.String({ minLength: 1 }), group: Type.String({ minLength: 1 }) }, Strict),
        dnsNames: Type.Array(Type.String({ minLength: 1 })),
        duration: Type.String(),
        renewBefore: Type.String()
      }, Strict)
    }, Strict),
    ingress: Type.Object({
      enabled: Type.Boolean(),
      className: str(),
      annotations: labels,
      hosts: Type.Array(Type.Object({
        host: Type.String(),
        paths: Type.Array(Type.Object({
          path: Type.String({ pattern: '^/' }),
          pathType: Type.Union([Type.Literal('Prefix'), Type.Literal('Exact'), Type.Literal('ImplementationSpecific')])
        }, Strict), { minItems: 1 })
      }, Strict)),
      tls: Type.Array(Type.Object({ hosts: Type.Optional(Type.Array(Type.String())), secretName: Type.Optional(Type.String()) }, Strict))
    }, Strict),
    httpRoute: Type.Object({
      enabled: Type.Boolean(),
      annotations: labels,
      parentRefs: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }), { minItems: 1 }),
      hostnames: Type.Array(Type.String()),
      timeouts: Type.Object({ request: Type.Optional(Type.String()), backendRequest: Type.Optional(Type.String()) }, Strict)
    }, Strict),
    networkPolicy: Type.Object({ enabled: Type.Boolean(), from: objects, metricsFrom: objects }, Strict),
    podDisruptionBudget: Type.Object({ maxUnavailable: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+%$' })]) }, Strict),
    autoscaling: Type.Object({
      enabled: Type.Boolean(),
      minReplicas: Type.Integer({ minimum: 1 }),
      maxReplicas: Type.Integer({ minimum: 1 }),
      metrics: objects
    }, Strict),
    metrics: Type.Object({
      serviceMonitor: monitor,
      podMonitor: monitor,
      prometheusRule: Type.Object({ enabled: Type.Boolean(), labels }, Strict),
      dashboard: Type.Object({ enabled: Type.Boolean(), labels }, Strict)
    }, Strict),
    serviceAccount: Type.Object({ create: Type.Boolean(), name: str(), annotations: labels }, Strict),
    tests: Type.Object({ origin: Type.String({ pattern: '^(https?://[^/*]+)?$' }) }, Strict),
    global: Type.Optional(anyObject)
  }, Strict)) as Json
}

export function chartSchema (): Json {
  const own = chartOwn()
  const schema: Json = {
    $schema: 'https://json-schema.org/draft-07/schema#',
    title: 'pai-cors-sidecar values',
    ...own,
    properties: { ...own.properties, ...sidecarBlocks() }
  }
  // An autoscaler needs something to scale on; a PDB that fits no replica count would block drains.
  schema.allOf = [{
    if: { properties: { autoscaling: { properties: { enabled: { const: true } } } } },
    then: { properties: { autoscaling: { properties: { metrics: { minItems: 1 } } } } }
  }]
  return schema
}

export function render (): string {
  return JSON.stringify(chartSchema(), null, 2) + '\n'
}

/** The sidecar's configuration blocks, in its schema's order, and those it reads only at start. */
export function renderBlocks (): string {
  return JSON.stringify({
    '//': 'generated by `npm run chart:schema` from sidecar/config/schema.ts and RESTART_ONLY in sidecar/config/reload.ts',
    blocks: Object.keys(ConfigSchema.properties),
    restartOnly: [...RESTART_ONLY]
  }, null, 2) + '\n'
}

// `node charts/schema.ts [--out FILE] [--blocks-out FILE]` (npm run chart:schema) writes both files.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: SCHEMA_PATH }, 'blocks-out': { type: 'string', default: BLOCKS_PATH } } })
  writeFileSync(values.out, render())
  writeFileSync(values['blocks-out'], renderBlocks())
}
