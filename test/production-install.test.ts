// The production install, as the image's `deps` stage does it: `dist/` built by the dev
// toolchain, then `npm ci --omit=dev` in a clean copy of the package files. No dev dependency may be
// installed, and the built entrypoint must serve, proxy and drain on SIGTERM with only the production
// tree beside it. (test/image/check.ts builds the real image; this is what can run without podman.)
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import { promisify } from 'node:util'
import { startStandin } from './standin/server.ts'
import { browserRoundTrip, chartLikeConfig, ORIGIN, stopWithSigterm, waitStarted } from './fixtures/entrypoint.ts'
import { standinFiles } from './fixtures/standin-files.ts'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>, files: string[], dependencies: Record<string, string>, devDependencies: Record<string, string>
}
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean, optional?: boolean, devOptional?: boolean }>
}

// A cold npm cache downloads ~150 packages: far beyond tap's default 30 s per file.
t.setTimeout(240_000)

const dir = mkdtempSync(join(tmpdir(), 'pai-production-install-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
for (const f of ['package.json', 'package-lock.json', 'README.md']) copyFileSync(join(ROOT, f), join(dir, f))
cpSync(join(ROOT, 'examples'), join(dir, 'examples'), { recursive: true })

// The same commands as the Dockerfile's build and deps stages (there tsc runs in the build stage; here
// from the repository, writing into the clean copy). --prefer-offline: CI's `npm ci` filled the cache.
await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: ROOT, timeout: 120_000 })
await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, timeout: 180_000 })

t.test('npm ci --omit=dev installs every production dependency and no dev dependency', async (t) => {
  const prod = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true && p.optional !== true && p.devOptional !== true)
  const dev = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && p.dev === true)
  t.ok(prod.length > 50 && dev.length > 50, 'the lockfile marks both kinds')
  t.same(prod.filter(([path]) => !existsSync(join(dir, path))).map(([path]) => path), [], 'every production package is installed')
  t.same(dev.filter(([path]) => existsSync(join(dir, path))).map(([path]) => path), [], 'no dev-only package is installed')
  // The ones that matter most by name: the second Node binary, the toolchain, the browser driver, Helm.
  // (@types/node is not among them: @kubernetes/client-node lists it in its own dependencies.)
  for (const name of ['node', 'typescript', 'tap', 'playwright-core', 'autocannon', '@types/ws', 'kubernetes-models']) {
    t.notOk(existsSync(join(dir, 'node_modules', name)), `${name} is not installed`)
  }
  t.notOk(existsSync(join(dir, 'node_modules/@aws-cdk')), 'no @aws-cdk/* (the Helm layers)')
  t.notOk(existsSync(join(dir, 'node_modules/.bin/node')), 'no node shim on the PATH of npm scripts')
  for (const name of Object.keys(pkg.dependencies)) t.ok(existsSync(join(dir, 'node_modules', name, 'package.json')), `${name} is installed`)
})

t.test('dist holds the compiled sidecar only: JavaScript, no TypeScript sources, tests or development stand-in', async (t) => {
  const files = readdirSync(join(dir, 'dist'), { recursive: true, encoding: 'utf8' })
  t.ok(files.includes('main.js') && files.includes(join('cli', 'run.js')))
  t.same(files.filter((f) => f.endsWith('.ts') || f.includes('test')), [])
  // The loader behind --standin is built; the stand-in it loads from a checkout is not.
  t.same(files.filter((f) => f.startsWith(`standin${sep}`)).sort(), [join('standin', 'server.js'), join('standin', 'server.js.map')], 'dist/standin/ holds the loader only')
  t.same(standinFiles(join(dir, 'dist')), [], 'no file of the stand-in')
  t.match(readFileSync(join(dir, 'dist/main.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'the bin keeps its shebang')
})

t.test('package.json: the bin is the built entrypoint, and `files` ships dist, not the sources', async (t) => {
  t.same(pkg.bin, { 'pai-cors-sidecar': 'dist/main.js' })
  t.same(pkg.files, ['dist', 'examples', 'README.md'])
  t.notOk('node' in pkg.dependencies, 'the Node binary is a devDependency, never a runtime one')
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, timeout: 60_000 })
  const packed = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path)
  t.ok(packed.includes('dist/main.js') && packed.includes('package.json') && packed.includes('examples/local.yaml'), 'the package holds the entrypoint')
  t.same(packed.filter((p) => !p.startsWith('dist/') && !p.startsWith('examples/') && !['package.json', 'README.md'].includes(p)), [], 'and nothing else')
})

t.test('the built entrypoint refuses --standin, naming what is missing', async (t) => {
  const child = spawn(process.execPath, [join(dir, 'dist/main.js'), '--standin'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 64, 'a usage error (EX_USAGE), not a crash')
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  t.match(stderr, `--standin: the development stand-in is not part of this build (no ${join(dir, 'test/standin/server.ts')})`)
})

t.test('the built entrypoint serves, proxies to the upstream and exits 0 on SIGTERM within the drain timeout', async (t) => {
  const upstream = await startStandin()
  t.teardown(upstream.close)
  writeFileSync(join(dir, 'config.yaml'), chartLikeConfig(upstream.url, { delay: '0s', timeout: '5s' }))
  const child = spawn(process.execPath, [join(dir, 'dist/main.js'), '--config', join(dir, 'config.yaml')], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, NODE_ENV: 'production' }
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const started = await waitStarted(child)

  const rt = await browserRoundTrip(started)
  t.equal(rt.preflight.status, 204, 'preflight answered by the sidecar')
  t.equal(rt.preflight.allowOrigin, ORIGIN)
  t.match(rt.preflight.allowMethods, /POST/)
  t.equal(rt.post.status, 200, 'POST forwarded to the stand-in')
  t.equal(rt.post.allowOrigin, ORIGIN)
  t.match(rt.post.body, '"processed_text":"Call [NAME_GIVEN_1] Doe at [PHONE_NUMBER_1]"', 'the stand-in de-identified the text')
  t.equal(rt.ready, 200, '/readyz on the admin port')

  const stopped = await stopWithSigterm(child, 10_000)
  t.same({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null }, 'SIGTERM drains and exits 0, not killed')
  t.match(started.output(), /"msg":"stopped"/)
})
