// values.schema.json and the chart README are generated; here they are checked for drift, and the
// schema is shown to refuse what it must, under both Helm versions, with the path of each problem.
import t from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { CHART, HELMS, ROOT, get, helm, render as renderChart, templateArgs } from './fixtures/helm.ts'
import { BLOCKS_PATH, ORIGIN_PATTERN, SCHEMA_PATH, chartSchema, render, renderBlocks } from '../charts/schema.ts'
import { RESTART_ONLY } from '../sidecar/config/reload.ts'
import { ConfigSchema } from '../sidecar/config/schema.ts'
import { Value } from '@sinclair/typebox/value'

t.test('values.schema.json is what `npm run chart:schema` generates from the sidecar schema', async (t) => {
  t.equal(readFileSync(SCHEMA_PATH, 'utf8'), render(), 'run `npm run chart:schema` after changing sidecar/config/schema.ts or charts/schema.ts')
  const dir = mkdtempSync(join(tmpdir(), 'chart-schema-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const out = join(dir, 'values.schema.json')
  const blocksOut = join(dir, 'sidecar-blocks.json')
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'charts/schema.ts'), '--out', out, '--blocks-out', blocksOut], (error) => { if (error === null) resolve(); else reject(error) })
  })
  t.equal(readFileSync(out, 'utf8'), readFileSync(SCHEMA_PATH, 'utf8'), 'the script writes the same file')
  t.equal(readFileSync(blocksOut, 'utf8'), readFileSync(BLOCKS_PATH, 'utf8'), 'and the same block list')
  const schema = chartSchema()
  for (const block of Object.keys(ConfigSchema.properties)) t.ok(block in schema.properties, `the sidecar block "${block}" is a chart value`)
  t.notOk('host' in schema.properties.server.properties, 'the chart owns server.host')
  t.notOk('url' in schema.properties.upstream.properties, 'the chart owns upstream.url')
  // The sidecar fills a field with a default; only fields without one stay required.
  for (const block of ['server', 'upstream', 'cors', 'shadow', 'limits', 'websocket']) t.notOk('required' in schema.properties[block], `${block}: nothing required`)
  t.same(schema.properties.routes.items.required, ['path', 'methods'], 'a route needs its path and methods')
})

t.test('files/sidecar-blocks.json, from which the templates build the ConfigMap and the restart checksum, is generated from the sidecar', async (t) => {
  t.equal(readFileSync(BLOCKS_PATH, 'utf8'), renderBlocks(), 'run `npm run chart:schema` after changing sidecar/config/schema.ts or RESTART_ONLY')
  const blocks = JSON.parse(readFileSync(BLOCKS_PATH, 'utf8')) as { blocks: string[], restartOnly: string[] }
  t.same(blocks.blocks, Object.keys(ConfigSchema.properties), 'every block of the sidecar schema')
  t.same(blocks.restartOnly, [...RESTART_ONLY], 'the blocks the sidecar reads only at start')
  t.ok(blocks.restartOnly.every((b) => blocks.blocks.includes(b)))
  // The ConfigMap the chart renders holds every block (routes, shadow and auth once they are set).
  const docs = await renderChart(HELMS[0], { set: { 'routes[0].path': '/process/text', 'routes[0].methods[0]': 'POST', 'shadow.allowedOrigins[0]': 'https://b.example.com', 'auth.jwt.issuer': 'https://login.example.com/', 'auth.jwt.audiences[0]': 'deid-api' } })
  const rendered = parse(get(docs, 'ConfigMap', '-config').data['config.yaml']) as Record<string, unknown>
  t.same(Object.keys(rendered).sort(), [...blocks.blocks].sort(), 'the rendered configuration has every block')
})

t.test('the chart README values table is what readme-generator writes from values.yaml', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chart-readme-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const copy = join(dir, 'README.md')
  copyFileSync(join(CHART, 'README.md'), copy)
  const bin = join(ROOT, 'node_modules/@bitnami/readme-generator-for-helm/bin/index.js')
  const output = await new Promise<string>((resolve) => {
    execFile(process.execPath, [bin, '--values', join(CHART, 'values.yaml'), '--readme', copy], (error, stdout, stderr) => {
      resolve(error === null ? '' : `${stdout}${stderr}`)
    })
  })
  t.equal(output, '', 'every key of values.yaml has a @param comment, and no comment names a missing key')
  t.equal(readFileSync(copy, 'utf8'), readFileSync(join(CHART, 'README.md'), 'utf8'), 'run `npm run chart:readme` after changing values.yaml')
})

t.test('values.yaml defaults for the sidecar blocks are the sidecar defaults, except where the chart chooses', async (t) => {
  const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'))
  const defaults = Value.Default(ConfigSchema, {}) as Record<string, any>
  // Deliberate differences, each for a reason given in values.yaml.
  const chosen: Record<string, unknown> = { 'cors.maxAge': 600 }
  const walk = (value: unknown, sidecar: unknown, path: string): void => {
    if (path in chosen) { t.same(value, chosen[path], `${path}: the chart's choice`); return }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) walk(item, (sidecar as Record<string, unknown> | undefined)?.[key], `${path}.${key}`)
      return
    }
    t.same(value, sidecar, `${path} defaults to the sidecar's ${JSON.stringify(sidecar)}`)
  }
  // Every block of the sidecar schema has its defaults in values.yaml, save the two whose empty value means "the sidecar's".
  for (const block of Object.keys(ConfigSchema.properties).filter((b) => b !== 'routes' && b !== 'shadow')) {
    t.ok(values[block] !== undefined, `values.yaml has the ${block} block`)
    walk(values[block], defaults[block], block)
  }
  t.same(values.routes, [], 'routes: empty means the sidecar defaults')
  t.same(values.shadow, {}, 'shadow: none')
})

t.test('the origin pattern takes browser-serialized origins and the sidecar wildcards only', async (t) => {
  const re = new RegExp(ORIGIN_PATTERN)
  for (const ok of ['*', 'https://app.example.com', 'http://localhost:5173', 'http://localhost:*', 'https://*.example.com', 'http://[::1]:8080', 'https://xn--bcher-kva.example']) t.match(ok, re, ok)
  for (const bad of ['https://app.example.com/', 'https://App.example.com', 'app.example.com', 'https://app.example.com/path', 'ftp://x.com', 'https://*example.com', '']) t.notMatch(bad, re, JSON.stringify(bad))
})

const REFUSED: Array<{ what: string, set: Record<string, string>, helm3: RegExp, helm4: RegExp }> = [
  {
    what: '"*" with credentials',
    set: { 'cors.allowedOrigins[0]': '*', 'cors.allowCredentials': 'true' },
    helm3: /cors\.allowedOrigins\.0: Must not validate the schema/,
    helm4: /at '\/cors\/allowedOrigins\/0': 'not' failed/
  },
  {
    what: 'a typo in a key',
    set: { 'cors.allowedOrgins[0]': 'https://app.example.com' },
    helm3: /cors: Additional property allowedOrgins is not allowed/,
    helm4: /at '\/cors': additional properties 'allowedOrgins' not allowed/
  },
  {
    what: 'a wrong type',
    set: { 'upstream.maxConcurrent': 'many' },
    helm3: /upstream\.maxConcurrent: Invalid type\. Expected: integer, given: string/,
    helm4: /at '\/upstream\/maxConcurrent': got string, want integer/
  },
  {
    what: 'an origin with a trailing slash',
    set: { 'cors.allowedOrigins[0]': 'https://app.example.com/' },
    helm3: /cors\.allowedOrigins\.0: Does not match pattern/,
    helm4: /at '\/cors\/allowedOrigins\/0': 'https:\/\/app\.example\.com\/' does not match pattern/
  },
  {
    what: 'a duration without a unit',
    set: { 'upstream.requestTimeout': '300' },
    helm3: /upstream\.requestTimeout: Invalid type\. Expected: string, given: integer/,
    helm4: /at '\/upstream\/requestTimeout'/
  },
  {
    what: 'a value the chart owns',
    set: { 'upstream.url': 'http://elsewhere:8080' },
    helm3: /upstream: Additional property url is not allowed/,
    helm4: /at '\/upstream': additional properties 'url' not allowed/
  },
  {
    what: 'an unknown config source',
    set: { 'sidecar.configSource': 'etcd' },
    helm3: /sidecar\.configSource/,
    helm4: /at '\/sidecar\/configSource'/
  },
  {
    what: 'autoscaling without metrics',
    set: { 'autoscaling.enabled': 'true' },
    helm3: /autoscaling\.metrics: Array must have at least 1 items/,
    helm4: /at '\/autoscaling\/metrics': minItems/
  },
  {
    what: 'a route without methods',
    set: { 'routes[0].path': '/process/text' },
    helm3: /routes\.0: methods is required/,
    helm4: /at '\/routes\/0': missing property 'methods'/
  },
  {
    what: '"*" with allowPrivateNetwork',
    set: { 'cors.allowedOrigins[0]': '*', 'cors.allowPrivateNetwork': 'true' },
    helm3: /cors\.allowedOrigins\.0: Must not validate the schema/,
    helm4: /at '\/cors\/allowedOrigins\/0': 'not' failed/
  },
  {
    what: 'a shadow policy with "*" and allowPrivateNetwork',
    set: { 'shadow.allowedOrigins[0]': '*', 'shadow.allowPrivateNetwork': 'true' },
    helm3: /shadow\.allowedOrigins\.0: Must not validate the schema/,
    helm4: /at '\/shadow\/allowedOrigins\/0': 'not' failed/
  },
  {
    what: 'a shadow policy with "*" and credentials',
    set: { 'shadow.allowedOrigins[0]': '*', 'shadow.allowCredentials': 'true' },
    helm3: /shadow\.allowedOrigins\.0: Must not validate the schema/,
    helm4: /at '\/shadow\/allowedOrigins\/0': 'not' failed/
  }
]

for (const which of HELMS) {
  t.test(`Helm ${which.major} refuses invalid values at install time, naming the path`, async (t) => {
    for (const c of REFUSED) {
      const result = await helm(which, templateArgs({ set: c.set }))
      t.not(result.code, 0, `${c.what}: refused`)
      t.match(result.stderr, which.major === 3 ? c.helm3 : c.helm4, `${c.what}: the message names the field`)
    }
    const several = await helm(which, templateArgs({ set: { 'cors.allowedOrgins[0]': 'x', 'upstream.maxConcurrent': 'many', 'log.level': 'loud' } }))
    t.equal(several.stderr.split('\n').filter((line) => /allowedOrgins|maxConcurrent|level/.test(line)).length, 3, 'every problem is reported at once')
  })
}
