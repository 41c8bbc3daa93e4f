// A local equivalent of the Dockerfile's base image, for `npm run test:image`.
// No registry is reachable from CI, so the official `node:24.x.y-bookworm-slim` cannot be pulled.
// It is rebuilt from the same ingredients: a Debian 12 root filesystem (`debootstrap --variant=minbase`,
// trimmed like debian:bookworm-slim), the official Node.js binary (npm package `node-linux-<arch>`,
// which repackages the nodejs.org tarball) at /usr/local/bin/node, npm under /usr/local/lib/node_modules,
// a `node` user 1000, and the image config of the official one (PATH, NODE_VERSION, the
// docker-entrypoint.sh ENTRYPOINT and `node` CMD), then `podman import`ed under the tag.
// A digest cannot be reproduced locally (it is the hash of the registry's manifest), so the tag is
// all that can match; check.ts builds with NODE_IMAGE set to the default reference minus its digest.
import { execFile, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Bumped whenever the recipe below changes, so that a cached base from an older recipe is rebuilt. */
export const RECIPE = '1'
export const ASSEMBLED_LABEL = 'io.github.pai-cors-sidecar.assembled-base'
// npm is not part of the `node-linux-*` package; the official image bundles the npm of its Node
// release. Any npm 11 reads lockfile v3 the same way; this one is pinned so that builds repeat.
export const NPM_VERSION = '11.6.2'

export interface BaseResult { cached: boolean, assembled: boolean, ms: number }

async function sh (cmd: string, args: string[], opts: { timeout?: number, cwd?: string } = {}): Promise<string> {
  const { stdout } = await run(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: opts.timeout ?? 300_000, cwd: opts.cwd })
  return stdout
}

export async function imageExists (ref: string): Promise<boolean> {
  try {
    await sh('podman', ['image', 'exists', ref])
    return true
  } catch {
    return false
  }
}

/** `npm pack <spec>` into the cache once; returns the tarball's path. */
async function packOnce (spec: string, file: string, cacheDir: string, log: (s: string) => void): Promise<string> {
  const path = join(cacheDir, file)
  if (existsSync(path)) return path
  log(`fetching ${spec} (npm pack)`)
  await sh('npm', ['pack', spec, '--pack-destination', cacheDir, '--silent'], { timeout: 180_000 })
  if (!existsSync(path)) throw new Error(`npm pack ${spec} did not write ${path}`)
  return path
}

/** The trimmed Debian root filesystem as a tarball, cached: debootstrap is most of a cold run. */
async function debianRootfs (cacheDir: string, workDir: string, log: (s: string) => void): Promise<string> {
  const tar = join(cacheDir, 'rootfs-bookworm-minbase.tar')
  if (existsSync(tar)) return tar
  const mirror = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian'
  const root = join(workDir, 'debootstrap')
  log(`debootstrap --variant=minbase bookworm from ${mirror}`)
  await sh('debootstrap', ['--variant=minbase', 'bookworm', root, mirror], { timeout: 400_000 })
  // What debian:bookworm-slim leaves out too: package caches and lists, documentation, locales.
  for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale']) {
    const path = join(root, dir)
    for (const entry of readdirSync(path)) if (entry !== 'partial' && entry !== 'lock') rmSync(join(path, entry), { recursive: true, force: true })
  }
  for (const entry of readdirSync(join(root, 'var/cache/apt'))) if (entry.endsWith('.bin')) rmSync(join(root, 'var/cache/apt', entry))
  await sh('tar', ['--numeric-owner', '-C', root, '-cf', `${tar}.partial`, '.'])
  renameSync(`${tar}.partial`, tar)
  rmSync(root, { recursive: true, force: true })
  return tar
}

// The official image's entrypoint, in substance: run `node` when the first argument is an option or
// not a command. Our Dockerfile replaces it; having it here checks that the replacement happens.
const DOCKER_ENTRYPOINT = `#!/bin/sh
set -e
if [ "\${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
`

/**
 * Makes `ref` (e.g. docker.io/library/node:24.21.0-bookworm-slim) exist in podman's storage:
 * reused when present (cached), otherwise assembled from the cached or freshly fetched ingredients.
 */
export async function ensureBase (ref: string, nodeVersion: string, cacheDir: string, log: (s: string) => void, rebuild = false): Promise<BaseResult> {
  const begin = Date.now()
  if (!rebuild && await imageExists(ref)) {
    const labels = JSON.parse(await sh('podman', ['image', 'inspect', ref, '--format', '{{json .Labels}}'])) as Record<string, string> | null
    const recipe = labels?.[ASSEMBLED_LABEL]
    if (recipe === undefined || recipe === RECIPE) {
      log(recipe === undefined ? `base ${ref}: present (pulled)` : `base ${ref}: present (assembled earlier, recipe ${recipe})`)
      return { cached: true, assembled: recipe !== undefined, ms: Date.now() - begin }
    }
    log(`base ${ref}: assembled by recipe ${recipe}, now ${RECIPE}: rebuilding`)
  }
  mkdirSync(cacheDir, { recursive: true })
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64']
  if (arch === undefined) throw new Error(`no node-linux package for ${process.arch}`)
  const workDir = mkdtempSync('/var/tmp/pai-image-base-')
  try {
    const [rootfsTar, nodeTgz, npmTgz] = await Promise.all([
      debianRootfs(cacheDir, workDir, log),
      packOnce(`node-linux-${arch}@${nodeVersion}`, `node-linux-${arch}-${nodeVersion}.tgz`, cacheDir, log),
      packOnce(`npm@${NPM_VERSION}`, `npm-${NPM_VERSION}.tgz`, cacheDir, log)
    ])
    const root = join(workDir, 'rootfs')
    mkdirSync(root)
    await sh('tar', ['--numeric-owner', '-C', root, '-xf', rootfsTar])
    // The layout of the official image: /usr/local/bin/node, npm and npx beside it.
    await sh('tar', ['-C', join(root, 'usr/local'), '-xzf', nodeTgz, '--strip-components=1', 'package/bin/node'])
    const npmDir = join(root, 'usr/local/lib/node_modules/npm')
    mkdirSync(npmDir, { recursive: true })
    await sh('tar', ['-C', npmDir, '-xzf', npmTgz, '--strip-components=1'])
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'))
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'))
    writeFileSync(join(root, 'usr/local/bin/docker-entrypoint.sh'), DOCKER_ENTRYPOINT, { mode: 0o755 })
    appendFileSync(join(root, 'etc/group'), 'node:x:1000:\n')
    appendFileSync(join(root, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n')
    appendFileSync(join(root, 'etc/shadow'), 'node:*:20000:0:99999:7:::\n')
    mkdirSync(join(root, 'home/node'))
    chownSync(join(root, 'home/node'), 1000, 1000)
    chmodSync(join(root, 'home/node'), 0o755)
    const version = await sh('chroot', [root, '/usr/local/bin/node', '--version'])
    if (version.trim() !== `v${nodeVersion}`) throw new Error(`assembled node reports ${version.trim()}, expected v${nodeVersion}`)

    log(`podman import ${ref}`)
    const tar = spawn('tar', ['--numeric-owner', '-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const imp = spawn('podman', ['import', '--quiet',
      '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change', `ENV NODE_VERSION=${nodeVersion}`,
      '--change', 'ENTRYPOINT ["docker-entrypoint.sh"]',
      '--change', 'CMD ["node"]',
      '--change', `LABEL ${ASSEMBLED_LABEL}=${RECIPE}`,
      '-', ref], { stdio: [tar.stdout, 'ignore', 'inherit'] })
    const code = await new Promise<number | null>((resolve) => imp.on('exit', resolve))
    if (code !== 0) throw new Error(`podman import exited ${code}`)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
  return { cached: false, assembled: true, ms: Date.now() - begin }
}
