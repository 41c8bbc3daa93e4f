// The sidecar as the chart runs it: the built dist/ (as in the image) inside a memory cgroup of the
// chart's default limit, beside the same build with no limit. Under a memory limit Node sizes V8's
// heap from it (process.constrainedMemory()), young generation included, and a small young
// generation means far more garbage collections per request. Each variant runs in its own cgroup,
// all in front of one bench upstream, pinned and loaded in turn within each round like `npm run bench`.
//
// `npm run bench:memory-limit [-- --limit 256 --node-options=--max-semi-space-size=16 (repeatable) --rounds 4
//   --seconds 4 --connections 64 --stream-mb 200]`: small POSTs in rounds, then one streamed echo
// through each (the cgroup peak after each part). Needs root and a writable cgroup memory controller (v1 or v2;
// measured on v1, v2 written from its documentation).
import { execFileSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuSeconds, ensure, freePort, loadSpec, memory, pinning, sidecarConfig, spawnPinned, startUpstream, stop, streamEcho, waitForPort, type Proc } from './harness.ts'
import { defaultLoader, load } from './load.ts'
import { aligned, median } from './report.ts'

const { values: v } = parseArgs({
  options: {
    limit: { type: 'string', default: '256' },
    'node-options': { type: 'string', multiple: true, default: ['--max-semi-space-size=16'] },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '64' },
    'stream-mb': { type: 'string', default: '200' }
  }
})
const limitMiB = Number(v.limit)
const rounds = Number(v.rounds)
const seconds = Number(v.seconds)
const connections = Number(v.connections)

/** A fresh memory cgroup under this process's own, on cgroup v2 or v1: its directory and files. */
function cgroup (name: string, bytes: number | undefined): { dir: string; peak: () => number } {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => v2 ? l.startsWith('0::') : /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))
  ensure(own !== undefined, 'no memory cgroup found in /proc/self/cgroup')
  const dir = join(v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory', own.slice(own.lastIndexOf(':') + 1), `pai-bench-${process.pid}-${name}`)
  mkdirSync(dir)
  const file = (v2name: string, v1name: string): string => join(dir, v2 ? v2name : v1name)
  try {
    // On v2 the files exist only where the parent's cgroup.subtree_control enables "memory".
    ensure(existsSync(file('memory.max', 'memory.limit_in_bytes')), `${dir}: no memory controller here (cgroup v2: enable it in the parent's cgroup.subtree_control)`)
    if (bytes !== undefined) writeFileSync(file('memory.max', 'memory.limit_in_bytes'), String(bytes))
  } catch (err) {
    rmdirSync(dir)
    throw err
  }
  const mib = (f: string): number => Number(readFileSync(f, 'utf8')) / 1048576
  return { dir, peak: () => mib(file('memory.peak', 'memory.max_usage_in_bytes')) }
}

const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'pai-bench-memory-'))
const devnull = openSync('/dev/null', 'w')
const variants = [
  { name: 'no limit', bytes: undefined, nodeOptions: '' },
  { name: `${limitMiB} MiB`, bytes: limitMiB * 1048576, nodeOptions: '' },
  ...(v['node-options'] as string[]).map((o) => ({ name: `${limitMiB} MiB ${o}`, bytes: limitMiB * 1048576, nodeOptions: o }))
]
const { servers, loaders } = pinning(true)
const procs: Proc[] = []
const groups: string[] = []
try {
  // dist/ beside node_modules and package.json, as in the image (/opt/pai-cors-sidecar).
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(work, 'dist')], { stdio: 'inherit' })
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'))
  symlinkSync(join(root, 'package.json'), join(work, 'package.json'))
  const { proc: upstream, url: upstreamUrl } = await startUpstream(servers)
  procs.push(upstream)
  const targets = []
  for (const [i, variant] of variants.entries()) {
    const cg = cgroup(String(i), variant.bytes)
    groups.push(cg.dir)
    const [port, adminPort] = [await freePort(), await freePort()]
    const config = join(work, `sidecar-${i}.yaml`)
    writeFileSync(config, sidecarConfig(port, adminPort, upstreamUrl))
    // The shell moves itself into the cgroup, then execs node: the sidecar is born inside it.
    // NODE_OPTIONS, as a chart's extraEnv or the image's ENV would set it.
    const script = `echo $$ > ${join(cg.dir, 'cgroup.procs')} && NODE_OPTIONS='${variant.nodeOptions}' exec ${process.execPath} ${join(work, 'dist/main.js')} --config ${config}`
    const proc = spawnPinned(servers, 'sh', ['-c', script], devnull)
    procs.push(proc)
    await waitForPort(port, proc.child)
    targets.push({ ...variant, cg, proc, url: `http://127.0.0.1:${port}`, rps: [] as number[], cpu10k: [] as number[], idle: 0, afterLoad: { rss: 0, peak: 0 }, stream: { ms: 0, peak: 0 }, killed: undefined as string | undefined })
  }
  type Target = typeof targets[number]
  // A limit too small for the heap the options allow ends in the kernel's OOM killer (SIGKILL): that
  // is a result to report, and the other variants go on.
  const alive = (t: Target, what: string): boolean => {
    if (t.killed === undefined && t.proc.child.signalCode !== null) t.killed = `killed by ${t.proc.child.signalCode} during ${what}`
    return t.killed === undefined
  }
  await sleep(500)
  for (const t of targets) t.idle = memory(t.proc.pid).rss
  for (let round = 0; round < rounds; round++) {
    for (const [i] of targets.entries()) {
      const t = targets[(i + round) % targets.length] as Target
      if (!alive(t, 'the POSTs')) continue
      const cpu0 = cpuSeconds(t.proc.pid)
      const r = await load(defaultLoader(), loadSpec('small', t.url, { connections, seconds, delayMs: 0 }), loaders)
      await sleep(100)
      if (!alive(t, 'the POSTs')) continue
      ensure(r.errors === 0 && r.requests > 0, `${t.name}: ${r.errors} errors in ${r.requests} requests`)
      t.rps.push(r.rps)
      t.cpu10k.push((cpuSeconds(t.proc.pid) - cpu0) / r.requests * 10_000)
      console.log(`round ${round + 1}/${rounds} ${t.name} done`)
    }
  }
  const streamBytes = Number(v['stream-mb']) * 1048576
  for (const t of targets) {
    if (!alive(t, 'the POSTs')) continue
    t.afterLoad = { rss: memory(t.proc.pid).rss, peak: t.cg.peak() }
    if (streamBytes === 0) continue
    const ms = await streamEcho(t.url, streamBytes).catch(async (err: Error) => {
      await sleep(500) // the reset reaches us before the child's exit does
      if (alive(t, 'the stream')) throw err
      return 0
    })
    await sleep(100)
    if (!alive(t, 'the stream')) continue
    t.stream = { ms, peak: t.cg.peak() }
    console.log(`stream ${t.name} done`)
  }
  const base = targets[0] as Target
  const med = (xs: number[]): number => median(xs) as number
  console.log(`\nsmall POSTs, ${connections} connections, ${rounds} rounds × ${seconds} s, medians; the built dist/ as in the image`)
  console.log(`then one ${v['stream-mb']} MB echo each; memory in MiB (RSS of the process; cgroup peak as the limit counts it, page cache included)`)
  const header = ['variant', 'req/s', '× no limit', 'CPU s/10k', 'idle RSS', 'RSS after', 'peak, POSTs', 'stream s', 'peak, stream']
  const rows = targets.map((t) => t.killed !== undefined
    ? [t.name, 'killed']
    : [
        t.name, med(t.rps).toFixed(0), med(t.rps.map((r, k) => r / (base.rps[k] as number))).toFixed(3), med(t.cpu10k).toFixed(3),
        t.idle.toFixed(0), t.afterLoad.rss.toFixed(0), t.afterLoad.peak.toFixed(0), (t.stream.ms / 1000).toFixed(2), t.stream.peak.toFixed(0)
      ])
  console.log(aligned([header, ...rows]))
  for (const t of targets) if (t.killed !== undefined) console.log(`${t.name}: ${t.killed} (the cgroup's OOM killer)`)
} finally {
  for (const p of procs.reverse()) await stop(p)
  // A cgroup can be removed once its processes are gone (rmdir, not a recursive delete).
  for (const dir of groups) rmdirSync(dir)
  closeSync(devnull)
  rmSync(work, { recursive: true, force: true })
}
