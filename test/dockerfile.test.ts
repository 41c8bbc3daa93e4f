// The Dockerfile keeps the contract the Helm chart relies on. `npm run test:image` builds and runs
// the image for real (test/image/check.ts); this catches a drift in `npm test`, where no podman runs.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { standinFiles } from './fixtures/standin-files.ts'

const ROOT = join(import.meta.dirname, '..')
// Instructions with their continuation lines joined, comments dropped.
const instructions = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  .replace(/\\\n\s*/g, '')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
const stages = instructions.join('\n').split(/^FROM /m).slice(1).map((s) => `FROM ${s}`)
const runtime = stages.at(-1) ?? ''

t.test('the base is a public Node 24 image pinned by exact tag and digest, overridable by NODE_IMAGE', async (t) => {
  t.match(instructions[0], /^ARG NODE_IMAGE=node:24\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/)
  t.equal(stages.length, 3, 'build, deps, runtime')
  for (const s of stages) t.match(s, /^FROM \$\{NODE_IMAGE\}/, 'every stage on the same pinned base')
})

t.test('the runtime stage: non-root numeric user, node as the entrypoint, the chart\'s paths and ports', async (t) => {
  t.match(runtime, /^USER 10001:10001$/m)
  t.match(runtime, /^ENTRYPOINT \["\/usr\/local\/bin\/node", "\/opt\/pai-cors-sidecar\/dist\/main\.js"\]$/m, 'exec form: node is PID 1 and gets SIGTERM')
  t.match(runtime, /^CMD \["--config", "\/etc\/pai-cors-sidecar\/config\.yaml"\]$/m)
  t.match(runtime, /^EXPOSE 8000 9090$/m)
  t.notMatch(runtime, /^(HEALTHCHECK|RUN|VOLUME)\b/m, 'no HEALTHCHECK (Kubernetes probes), nothing run in the runtime stage')
  t.notMatch(instructions.join('\n'), /npm (start|run start)|docker-entrypoint/, 'no npm wrapper swallowing SIGTERM')
  t.match(runtime, /org\.opencontainers\.image\.licenses="Apache-2\.0"/)
  t.match(runtime, /org\.opencontainers\.image\.version="\$\{VERSION\}"/)
  t.match(runtime, /org\.opencontainers\.image\.source="https:\/\/github\.com\/pai-cors-sidecar\/pai-cors-sidecar"/)
})

t.test('only production dependencies reach the runtime stage', async (t) => {
  const deps = stages.find((s) => / AS deps$/m.test(s.split('\n')[0] ?? '')) ?? ''
  t.match(deps, /npm ci --omit=dev --ignore-scripts/)
  t.match(runtime, /^COPY --from=deps \/opt\/pai-cors-sidecar\/node_modules \.\/node_modules$/m)
  t.notMatch(runtime, /^COPY --from=build \S*node_modules/m, 'never the build stage\'s node_modules')
  t.match(runtime, /^COPY --from=build \/src\/dist \.\/dist$/m)
})

t.test('.dockerignore is an allowlist that keeps everything else out of the build context', async (t) => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'))
  t.same(lines, ['*', '!package.json', '!package-lock.json', '!tsconfig.json', '!tsconfig.build.json', '!sidecar/'])
})

t.test('the build context holds no development stand-in: it lives outside sidecar/, the only source directory admitted', async (t) => {
  t.match(runtime, /^COPY --from=build \/src\/dist \.\/dist$/m, 'the image gets what the build compiled from sidecar/')
  t.match(stages[0] ?? '', /^COPY sidecar \.\/sidecar$/m)
  t.notMatch(instructions.join('\n'), /^COPY\b.*\bstandin\b/m, 'no stage copies the stand-in')
  t.same(standinFiles(join(ROOT, 'sidecar')), [], 'no file of the stand-in under sidecar/')
  t.ok(standinFiles(join(ROOT, 'test/standin')).length > 0, 'it is in test/standin/, which .dockerignore leaves out')
})
