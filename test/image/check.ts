// `npm run test:image`: build the project's Dockerfile for real and check the image as a
// user of it would. No Docker engine runs here and `podman run` cannot set rlimits in this sandbox, so:
//   - the base is assembled locally when missing (base.ts) and the Dockerfile built by podman with
//     buildah's chroot isolation;
//   - the image is "run" the way a container runtime would: its filesystem (a podman container's
//     mount), a private mount namespace with the chart's mounts (read-only root, an emptyDir-like
//     tmpfs on /tmp, the ConfigMap at /etc/pai-cors-sidecar/), a new PID namespace so the entrypoint
//     is PID 1, and `chroot --userspec` with the image's own USER, ENTRYPOINT, CMD, Env and WorkingDir.
// Prints a PASS/FAIL line per check and the measurements; exits 1 when any check fails.
// Needs root and podman, debootstrap, unshare, chroot (.ci/install-image-deps). Without them a
// developer's run skips; with CI set it fails (the convention of test/prometheus-scrape.test.ts).
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startStandin } from '../standin/server.ts'
import { browserRoundTrip, chartLikeConfig, ORIGIN, stopWithSigterm, waitStarted } from '../fixtures/entrypoint.ts'
import { standinFiles } from '../fixtures/standin-files.ts'
import { ensureBase } from './base.ts'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '../..')
const CACHE = join(ROOT, '.cache/image')
const IMAGE = 'localhost/pai-cors-sidecar:image-test'
const APP = '/opt/pai-cors-sidecar'
const CONFIG_DIR = '/etc/pai-cors-sidecar'
const USER = '10001:10001'
/** The image may add at most this much (uncompressed) over its base: today ~90 MiB, mostly node_modules. */
const BUDGET_MIB = 128
const DRAIN = { delay: '1s', timeout: '5s', ms: 6_000 }

const started = Date.now()
const results: { name: string, ok: boolean }[] = []
function check (name: string, ok: boolean, detail = ''): boolean {
  results.push({ name, ok })
  process.stdout.write(`${ok ? 'PASS' : 'FAIL'} ${name}${detail === '' ? '' : `: ${detail}`}\n`)
  return ok
}
const info = (text: string): void => { process.stdout.write(`     ${text}\n`) }
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

async function sh (cmd: string, args: string[], timeout = 120_000): Promise<string> {
  const { stdout } = await run(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout })
  return stdout.trim()
}

// --- preconditions ----------------------------------------------------------------------------------
const tools = await Promise.all(['podman', 'debootstrap', 'unshare', 'chroot', 'mount'].map(async (c) => await run('sh', ['-c', `command -v ${c}`]).then(() => '', () => c)))
const lacking = [...tools.filter((c) => c !== ''), ...(process.getuid?.() === 0 ? [] : ['root'])]
if (lacking.length > 0) {
  const why = `needs ${lacking.join(', ')} (sudo bash .ci/install-image-deps; run as root)`
  if (process.env.CI !== undefined) {
    check('preconditions', false, why)
    process.exit(1)
  }
  process.stdout.write(`SKIP image checks: ${why}\n`)
  process.exit(0)
}

// --- the base, as the Dockerfile names it -----------------------------------------------------------
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const defaultBase = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? ''
const pin = /^(node:(24\.\d+\.\d+)-bookworm-slim)@sha256:[0-9a-f]{64}$/.exec(defaultBase)
check('Dockerfile pins a public Node 24 base by exact tag and digest', pin !== null, defaultBase)
if (pin === null) process.exit(1)
const [, tag = '', nodeVersion = ''] = pin
// The digest names the registry's manifest and cannot be reproduced locally: build from the same tag.
const localBase = `docker.io/library/${tag}`
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string, dependencies: Record<string, string> }
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean, optional?: boolean, devOptional?: boolean }> }

const base = await ensureBase(localBase, nodeVersion, CACHE, info, process.argv.includes('--rebuild-base'))
check(`base ${localBase} ${base.cached ? 'reused from the cache' : 'assembled'}`, true, seconds(base.ms))

// --- build ------------------------------------------------------------------------------------------
// Behind a TLS-intercepting proxy the build's npm must trust the host's CA bundle and use its registry.
// Both reach the RUN steps as build-time volumes: never a layer (the runtime stage has no RUN, and the
// content check below looks for them).
const work = mkdtempSync('/var/tmp/pai-image-check-')
const buildMounts: string[] = []
const npmGet = async (key: string): Promise<string> => await sh('npm', ['config', 'get', key]).catch(() => 'undefined')
const cafile = [await npmGet('cafile'), process.env.NODE_EXTRA_CA_CERTS].find((f) => f !== undefined && f !== 'null' && f !== 'undefined' && existsSync(f))
const npmrc = [`registry=${await npmGet('registry')}`]
if (cafile !== undefined) {
  buildMounts.push('-v', `${cafile}:/run/host-ca/ca.crt:ro`)
  npmrc.push('cafile=/run/host-ca/ca.crt')
}
writeFileSync(join(work, 'npmrc'), `${npmrc.join('\n')}\n`)
buildMounts.push('-v', `${join(work, 'npmrc')}:/usr/local/etc/npmrc:ro`)

const previous = await sh('podman', ['image', 'inspect', IMAGE, '--format', '{{.Id}}']).catch(() => '')
const revision = await sh('git', ['-C', ROOT, 'rev-parse', 'HEAD']).catch(() => 'unknown')
const buildLog = join(CACHE, 'build.log')
mkdirSync(CACHE, { recursive: true })
const buildBegin = Date.now()
// --layers=false: every run builds from scratch (only the base and npm's download cache are reused),
// so the time measured is a real build. --jobs=2: the build and deps stages run side by side.
const build = spawn('podman', ['build', '--isolation', 'chroot', '--pull=never', '--layers=false', '--jobs=2',
  '--build-arg', `NODE_IMAGE=${localBase}`, '--build-arg', `VERSION=${pkg.version}`, '--build-arg', `REVISION=${revision}`,
  ...buildMounts, '-t', IMAGE, '-f', join(ROOT, 'Dockerfile'), ROOT], { stdio: ['ignore', 'pipe', 'pipe'] })
const logFile = createWriteStream(buildLog)
build.stdout.pipe(logFile, { end: false })
build.stderr.pipe(logFile, { end: false })
const killer = setTimeout(() => { build.kill('SIGTERM') }, 420_000)
const [buildCode] = await once(build, 'close') as [number | null]
clearTimeout(killer)
const buildMs = Date.now() - buildBegin
await new Promise((resolve) => logFile.end(resolve))
if (!check('podman build of the project\'s Dockerfile', buildCode === 0, `${seconds(buildMs)}, log in ${buildLog}`)) {
  process.stdout.write(readFileSync(buildLog, 'utf8').split('\n').slice(-40).join('\n'))
  rmSync(work, { recursive: true, force: true })
  process.exit(1)
}
const imageId = await sh('podman', ['image', 'inspect', IMAGE, '--format', '{{.Id}}'])
if (previous !== '' && previous !== imageId) await sh('podman', ['rmi', previous]).catch(() => '')

// --- the image config -------------------------------------------------------------------------------
interface ImageConfig {
  Size: number
  Config: { User?: string, Entrypoint?: string[], Cmd?: string[], Env?: string[], WorkingDir?: string, ExposedPorts?: Record<string, unknown>, Labels?: Record<string, string>, Healthcheck?: unknown }
}
const inspect = async (ref: string): Promise<ImageConfig> => (JSON.parse(await sh('podman', ['image', 'inspect', ref])) as ImageConfig[])[0] as ImageConfig
const image = await inspect(IMAGE)
const baseImage = await inspect(localBase)
const cfg = image.Config
check('runs as the chart\'s non-root numeric user', cfg.User === USER, String(cfg.User))
check('ENTRYPOINT is node itself, exec form (PID 1, no npm or shell wrapper)',
  JSON.stringify(cfg.Entrypoint) === JSON.stringify(['/usr/local/bin/node', `${APP}/dist/main.js`]), JSON.stringify(cfg.Entrypoint))
check('CMD reads the ConfigMap where the chart mounts it', JSON.stringify(cfg.Cmd) === JSON.stringify(['--config', `${CONFIG_DIR}/config.yaml`]), JSON.stringify(cfg.Cmd))
check('exposes 8000 and 9090 only', JSON.stringify(Object.keys(cfg.ExposedPorts ?? {}).sort()) === '["8000/tcp","9090/tcp"]', Object.keys(cfg.ExposedPorts ?? {}).join(' '))
check('no HEALTHCHECK (Kubernetes probes /livez and /readyz)', cfg.Healthcheck === undefined || cfg.Healthcheck === null)
const labels = cfg.Labels ?? {}
check('OCI labels: licenses, version, source, base', labels['org.opencontainers.image.licenses'] === 'Apache-2.0' &&
  labels['org.opencontainers.image.version'] === pkg.version && labels['org.opencontainers.image.source'] === 'https://github.com/pai-cors-sidecar/pai-cors-sidecar' &&
  labels['org.opencontainers.image.base.name'] === localBase, `version ${labels['org.opencontainers.image.version']}, base ${labels['org.opencontainers.image.base.name']}`)

// --- size -------------------------------------------------------------------------------------------
const over = image.Size - baseImage.Size
check(`size over the base within ${BUDGET_MIB} MiB`, over <= BUDGET_MIB * 1024 * 1024, `${mib(over)} over the base (image ${mib(image.Size)}, base ${mib(baseImage.Size)})`)

// --- the filesystem, as a runtime would see it ------------------------------------------------------
interface Entry { type: 'dir' | 'file' | 'link' | 'other', mode: number, uid: number, gid: number, size: number }
function walk (root: string): Map<string, Entry> {
  const out = new Map<string, Entry>()
  const visit = (rel: string): void => {
    const st = lstatSync(join(root, rel))
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other'
    out.set(rel === '' ? '/' : rel, { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size })
    if (type === 'dir' && !['/proc', '/sys', '/dev'].includes(rel)) for (const e of readdirSync(join(root, rel))) visit(`${rel}/${e}`)
  }
  visit('')
  return out
}

const container = `pai-image-check-${process.pid}`
let containerMounted = false
let baseMounted = false
const standin = await startStandin()
let failed = false
try {
  await sh('podman', ['create', '--name', container, IMAGE])
  const rootfs = await sh('podman', ['mount', container])
  containerMounted = true
  const baseRoot = await sh('podman', ['image', 'mount', localBase])
  baseMounted = true
  const img = walk(rootfs)
  const bas = walk(baseRoot)
  const added = [...img.keys()].filter((p) => !bas.has(p))
  const changed = [...img.entries()].filter(([p, e]) => {
    const b = bas.get(p)
    return b !== undefined && (b.type !== e.type || b.mode !== e.mode || b.uid !== e.uid || (e.type !== 'dir' && b.size !== e.size))
  }).map(([p]) => p)
  info(`the image adds ${added.length} paths over its base and changes ${changed.length}`)

  check('adds nothing outside the app directory and changes nothing of the base',
    added.every((p) => p === APP || p.startsWith(`${APP}/`)) && changed.length === 0,
    [...added.filter((p) => !p.startsWith(APP)), ...changed].slice(0, 10).join(' '))
  const top = readdirSync(join(rootfs, APP)).sort()
  check('the app directory holds dist/, node_modules/ and package.json only', JSON.stringify(top) === '["dist","node_modules","package.json"]', top.join(' '))
  const devOnly = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/') && lock.packages[p]?.dev === true)
  const leaked = devOnly.filter((p) => img.has(`${APP}/${p}`))
  check('no dev dependency in the runtime layer', leaked.length === 0 && img.has(`${APP}/node_modules`), `${devOnly.length} dev-only packages in the lockfile, ${leaked.length} present ${leaked.slice(0, 5).join(' ')}`)
  const prod = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/') && lock.packages[p]?.dev !== true && lock.packages[p]?.optional !== true && lock.packages[p]?.devOptional !== true)
  const absentProd = prod.filter((p) => !img.has(`${APP}/${p}`))
  check('every production dependency installed', absentProd.length === 0, `${prod.length} packages${absentProd.length > 0 ? `, missing ${absentProd.slice(0, 5).join(' ')}` : ''}`)
  const sources = added.filter((p) => !p.startsWith(`${APP}/node_modules/`) && (/\.(ts|mts|cts)$/.test(p) || /\/(test|tests|sidecar|\.git|\.tap|coverage|bench|docs|charts)(\/|$)/.test(p.slice(APP.length)) || /\/(tsconfig[^/]*\.json|package-lock\.json)$/.test(p)))
  check('no sources, tests, lockfile or tooling config in the runtime layer', sources.length === 0, sources.slice(0, 5).join(' '))
  // The development stand-in is a test double: found by its banner, and only --standin's loader may remain.
  const standinCode = standinFiles(join(rootfs, APP))
  const standinDir = existsSync(join(rootfs, APP, 'dist/standin')) ? readdirSync(join(rootfs, APP, 'dist/standin')).sort() : []
  check('no development stand-in in the image (dist/standin/ holds the --standin loader only)',
    standinCode.length === 0 && JSON.stringify(standinDir) === '["server.js","server.js.map"]', [...standinCode, ...standinDir].slice(0, 5).join(' '))
  const secretName = /\/(\.npmrc|npmrc|\.yarnrc(\.yml)?|\.env(\.[^/]*)?|\.netrc|\.git-credentials|kubeconfig|id_(rsa|ecdsa|ed25519)[^/]*|[^/]*\.(pem|key|p12|pfx|crt))$/
  // Our own files by name and content; node_modules holds the packages exactly as published (some ship
  // test fixtures such as a TLS key for their own tests), which are listed for the record.
  const ours = added.filter((p) => !p.includes('/node_modules/'))
  const secretContent = /_authToken|-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}/
  const secrets = ours.filter((p) => secretName.test(p) || ((img.get(p) as Entry).type === 'file' && secretContent.test(readFileSync(join(rootfs, p), 'utf8'))))
  const buildOnly = ['/usr/local/etc/npmrc', '/run/host-ca', '/root/.npm', '/root/.npmrc'].filter((p) => img.has(p) && !bas.has(p))
  check('no secrets or build-time files (npmrc, CA mount, npm cache, keys, tokens, .env) in the image', secrets.length === 0 && buildOnly.length === 0, [...secrets, ...buildOnly].slice(0, 5).join(' '))
  const thirdParty = added.filter((p) => p.includes('/node_modules/') && secretName.test(p))
  if (thirdParty.length > 0) info(`key or certificate files inside published dependencies (their test fixtures): ${thirdParty.map((p) => p.slice(APP.length + 1)).join(' ')}`)
  const wrongOwner = added.filter((p) => { const e = img.get(p) as Entry; return e.uid !== 0 || e.gid !== 0 || (e.type !== 'link' && (e.mode & 0o022) !== 0) })
  check('the app is owned by root and not writable by its user', wrongOwner.length === 0, wrongOwner.slice(0, 5).join(' '))
  const [uid, gid] = USER.split(':').map(Number) as [number, number]
  const writable = [...img.entries()].filter(([, e]) => e.type !== 'link' && ((e.uid === uid && (e.mode & 0o200) !== 0) || (e.gid === gid && (e.mode & 0o020) !== 0) || (e.mode & 0o002) !== 0)).map(([p]) => p)
  const tmpDirs = writable.filter((p) => (img.get(p) as Entry).type === 'dir' && ((img.get(p) as Entry).mode & 0o1000) !== 0 && bas.has(p))
  check(`UID ${uid} can write nowhere but the base's sticky tmp dirs (permissions alone)`, writable.length === tmpDirs.length, `writable: ${writable.join(' ')}`)

  // The runtime's own steps: mount points for the ConfigMap volume (the kubelet's layout: a `..data`
  // symlink to a timestamped directory, and config.yaml linking through it), /dev, /proc, /tmp.
  for (const dir of [CONFIG_DIR, '/proc', '/dev', '/tmp']) mkdirSync(join(rootfs, dir), { recursive: true })
  const configVolume = join(work, 'configmap')
  mkdirSync(join(configVolume, '..2026_01_01_00_00_00.000000001'), { recursive: true })
  writeFileSync(join(configVolume, '..2026_01_01_00_00_00.000000001/config.yaml'), chartLikeConfig(standin.url, DRAIN))
  symlinkSync('..2026_01_01_00_00_00.000000001', join(configVolume, '..data'))
  symlinkSync('..data/config.yaml', join(configVolume, 'config.yaml'))

  // Runs a command in the image the way a container runtime does; the unshare'd shell becomes PID 1
  // in a new PID namespace and execs (mounts, then chroot, then env) until the command itself is PID 1.
  const start = (argv: string[], opts: { readOnlyRoot: boolean }): ChildProcess => {
    const script = `set -eu
root=$1 cfg=$2 ro=$3 user=$4 cwd=$5; shift 5
mount --bind "$root" "$root"
[ "$ro" = ro ] && mount -o remount,bind,ro "$root"
mount --bind "$cfg" "$root${CONFIG_DIR}" && mount -o remount,bind,ro "$root${CONFIG_DIR}"
[ "$ro" = ro ] && mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$root/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o mode=755,size=64k,nosuid tmpfs "$root/dev"
for d in null zero full random urandom; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$cwd" "$@"
`
    const env = ['HOME=/', ...(cfg.Env ?? [])]
    return spawn('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', 'sh', '-c', script, 'sh',
      rootfs, configVolume, opts.readOnlyRoot ? 'ro' : 'rw', cfg.User === undefined || cfg.User === '' ? '0:0' : cfg.User, cfg.WorkingDir ?? '/', ...env, ...argv],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  }
  const output = async (child: ChildProcess): Promise<{ code: number | null, out: string }> => {
    let out = ''
    child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    return { code, out }
  }

  // Where can the process write? Under the chart's securityContext (read-only root, /tmp an emptyDir)
  // only /tmp; probed by the image's own node as the image's user.
  const targets = ['/tmp', APP, `${APP}/dist`, `${APP}/node_modules/fastify`, CONFIG_DIR, '/etc', '/', '/root', '/home/node', '/var/tmp', '/usr/local/bin', '/opt']
  const probe = `const fs = require('node:fs'); const r = {}
for (const d of ${JSON.stringify(targets)}) { try { fs.writeFileSync(d.replace(/\\/$/, '') + '/.probe', 'x'); fs.rmSync(d.replace(/\\/$/, '') + '/.probe'); r[d] = 'written' } catch (e) { r[d] = e.code } }
console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), pid: process.pid, r }))`
  for (const readOnlyRoot of [true, false]) {
    const { code, out } = await output(start(['/usr/local/bin/node', '-e', probe], { readOnlyRoot }))
    const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { uid?: number, gid?: number, groups?: number[], r?: Record<string, string> }
    const written = Object.entries(parsed.r ?? {}).filter(([, v]) => v === 'written').map(([k]) => k)
    if (readOnlyRoot) {
      check(`as the chart runs it (read-only root, emptyDir /tmp) the process is ${USER} and writes only /tmp`,
        code === 0 && parsed.uid === uid && parsed.gid === gid && JSON.stringify(written) === '["/tmp"]',
        `uid ${parsed.uid} gid ${parsed.gid} groups [${parsed.groups?.join(',')}]; ${Object.entries(parsed.r ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    } else {
      check('with a writable root (no readOnlyRootFilesystem) it still cannot write the app, /etc or /',
        code === 0 && written.every((w) => w === '/tmp' || w === '/var/tmp'), `written: ${written.join(' ')}`)
    }
  }

  // The entrypoint, with its default CMD, as PID 1 in front of the stand-in upstream.
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])]
  const child = start(argv, { readOnlyRoot: true })
  const running = await waitStarted(child, 30_000).catch((err: Error) => { check('the entrypoint starts the sidecar', false, err.message); return undefined })
  if (running !== undefined) {
    check('the entrypoint starts the sidecar with the config mounted at /etc/pai-cors-sidecar/', true, `public ${running.publicUrl}, admin ${running.adminUrl}`)
    const pid = Number(readdirSync('/proc').find((p) => /^\d+$/.test(p) && readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1] === String(child.pid)))
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const field = (name: string): string => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim().replace(/\s+/g, ' ') ?? ''
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '')
    check('the sidecar is PID 1 of its namespace, running node directly as the image\'s user',
      field('NSpid').endsWith(' 1') && field('Uid').split(' ').every((u) => u === String(uid)) && field('Gid').split(' ').every((g) => g === String(gid)) &&
      JSON.stringify(cmdline) === JSON.stringify(argv) && readlinkSync(`/proc/${pid}/root`) === rootfs,
      `NSpid ${field('NSpid')}, Uid ${field('Uid')}, Gid ${field('Gid')}, Groups [${field('Groups')}], ${cmdline.join(' ')}`)
    const rt = await browserRoundTrip(running)
    check('answers a preflight from an allowed origin', rt.preflight.status === 204 && rt.preflight.allowOrigin === ORIGIN, `${rt.preflight.status}, allow-origin ${rt.preflight.allowOrigin}, methods ${rt.preflight.allowMethods}`)
    check('proxies a POST to the stand-in upstream', rt.post.status === 200 && rt.post.allowOrigin === ORIGIN && rt.post.body.includes('[PHONE_NUMBER_1]'), `${rt.post.status}, allow-origin ${rt.post.allowOrigin}`)
    check('/readyz on the admin port', rt.ready === 200, String(rt.ready))
    const stopped = await stopWithSigterm(child, DRAIN.ms + 5_000, pid)
    check(`SIGTERM to PID 1 drains and exits 0 within shutdown.delay + timeout (${DRAIN.delay} + ${DRAIN.timeout})`,
      stopped.code === 0 && stopped.signal === null && stopped.ms <= DRAIN.ms, `exit ${stopped.code}${stopped.signal === null ? '' : ` (${stopped.signal})`} after ${seconds(stopped.ms)}`)
    check('logged its drain and stop', /"draining: readiness is now 503"/.test(running.output()) && /"msg":"stopped"/.test(running.output()))
  } else if (child.exitCode === null) {
    child.kill('SIGKILL')
  }
} catch (err) {
  failed = true
  check('image checks ran to the end', false, (err as Error).stack ?? String(err))
} finally {
  await standin.close()
  if (containerMounted) await sh('podman', ['umount', container]).catch(() => '')
  await sh('podman', ['rm', '-f', container]).catch(() => '')
  if (baseMounted) await sh('podman', ['image', 'unmount', localBase]).catch(() => '')
  rmSync(work, { recursive: true, force: true })
}

const failures = results.filter((r) => !r.ok)
process.stdout.write(`\nimage ${IMAGE} (${imageId.slice(0, 12)}): ${mib(image.Size)}, ${mib(over)} over the base ${localBase} (${mib(baseImage.Size)})\n`)
process.stdout.write(`base ${base.cached ? 'cached' : 'assembled'} in ${seconds(base.ms)}; build ${seconds(buildMs)}; total ${seconds(Date.now() - started)}\n`)
process.stdout.write(`${results.length - failures.length} passed, ${failures.length} failed\n`)
process.exit(failures.length > 0 || failed ? 1 : 0)
