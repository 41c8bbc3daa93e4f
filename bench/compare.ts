// Two revisions of the sidecar side by side: did a hot-path change help? Both run with the benchmark
// configuration in front of one bench upstream, pinned like `npm run bench`. Within each round both
// are loaded back to back, in an order that alternates; the answer is the median over rounds of the
// per-round ratio (head ÷ base) of requests/s and of CPU seconds per 10 000 requests. The CPU figure
// is the steadier one on a shared machine: it does not depend on how much of the core each got.
// The command is bench/ab.ts (`npm run bench:ab`).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cpuSeconds, DEFAULTS, ensure, freePort, loadSpec, pinning, sidecarConfig, spawnPinned, startUpstream, stop, waitForPort, type CaseName, type Proc } from './harness.ts'
import { load, type Loader } from './load.ts'
import { aligned, median } from './report.ts'

export type AbCase = Exclude<CaseName, 'stream'>

export interface AbOptions {
  /** A checkout of the base revision (its sidecar/ is run; its node_modules may be missing). */
  baseDir: string
  /** The checkout under test, normally this one. */
  headDir: string
  /** Node.js flags for the head's sidecar only (e.g. a V8 heap setting), before its script. */
  headFlags?: readonly string[] | undefined
  cases: readonly AbCase[]
  seconds: number
  rounds: number
  warmup: number
  connections: number
  loader: Loader
  pin: boolean
  log: (line: string) => void
}

export interface AbCaseResult {
  base: { rps: number; cpu10k: number }
  head: { rps: number; cpu10k: number }
  /** Medians of the per-round head ÷ base ratios. */
  rpsRatio: number
  cpuRatio: number
}

export async function runAb (opts: AbOptions): Promise<Record<string, AbCaseResult>> {
  const { servers, loaders } = pinning(opts.pin)
  const dir = mkdtempSync(join(tmpdir(), 'pai-bench-ab-'))
  const procs: Proc[] = []
  try {
    const { proc: upstream, url: upstreamUrl } = await startUpstream(servers)
    procs.push(upstream)
    const sidecars: { name: 'base' | 'head'; url: string; proc: Proc }[] = []
    for (const [name, root] of [['base', opts.baseDir], ['head', opts.headDir]] as const) {
      const [port, adminPort] = [await freePort(), await freePort()]
      const config = join(dir, `${name}.yaml`)
      writeFileSync(config, sidecarConfig(port, adminPort, upstreamUrl))
      // stdout to /dev/null, as in `npm run bench`: every request line is formatted and written.
      const flags = name === 'head' ? opts.headFlags ?? [] : []
      const proc = spawnPinned(servers, process.execPath, [...flags, join(root, 'sidecar/main.ts'), '--config', config], 'ignore')
      procs.push(proc)
      await waitForPort(port, proc.child)
      sidecars.push({ name, url: `http://127.0.0.1:${port}`, proc })
    }
    const measure = async (c: AbCase, s: typeof sidecars[number], seconds: number): Promise<{ rps: number; cpu10k: number }> => {
      const cpu0 = cpuSeconds(s.proc.pid)
      const r = await load(opts.loader, loadSpec(c, s.url, { connections: opts.connections, seconds, delayMs: DEFAULTS.delayMs }), loaders)
      const cpu = cpuSeconds(s.proc.pid) - cpu0
      ensure(r.errors === 0 && r.requests > 0, `${c} against ${s.name}: ${r.errors} errors in ${r.requests} requests`)
      return { rps: r.rps, cpu10k: cpu / r.requests * 10_000 }
    }
    for (const c of opts.cases) for (const s of sidecars) if (opts.warmup > 0) await measure(c, s, opts.warmup)
    const samples: Record<string, { base: { rps: number; cpu10k: number }[]; head: { rps: number; cpu10k: number }[] }> = {}
    for (let round = 0; round < opts.rounds; round++) {
      for (const c of opts.cases) {
        // Alternate which one goes first, so that drift within a round favours neither.
        for (const s of round % 2 === 0 ? sidecars : [...sidecars].reverse()) {
          ((samples[c] ??= { base: [], head: [] })[s.name]).push(await measure(c, s, opts.seconds))
          opts.log(`round ${round + 1}/${opts.rounds} ${c} ${s.name} done`)
        }
      }
    }
    const result: Record<string, AbCaseResult> = {}
    const med = (xs: number[]): number => median(xs) as number
    for (const [c, { base, head }] of Object.entries(samples)) {
      result[c] = {
        base: { rps: med(base.map((x) => x.rps)), cpu10k: med(base.map((x) => x.cpu10k)) },
        head: { rps: med(head.map((x) => x.rps)), cpu10k: med(head.map((x) => x.cpu10k)) },
        rpsRatio: med(head.map((h, i) => h.rps / (base[i] as { rps: number }).rps)),
        cpuRatio: med(head.map((h, i) => h.cpu10k / (base[i] as { cpu10k: number }).cpu10k))
      }
    }
    return result
  } finally {
    for (const p of procs.reverse()) await stop(p)
    rmSync(dir, { recursive: true, force: true })
  }
}

export function formatAb (result: Record<string, AbCaseResult>): string {
  const rows = [['case', 'base req/s', 'head req/s', 'head ÷ base', 'base CPU s/10k', 'head CPU s/10k', 'head ÷ base']]
  for (const [c, r] of Object.entries(result)) {
    rows.push([c, r.base.rps.toFixed(0), r.head.rps.toFixed(0), r.rpsRatio.toFixed(3), r.base.cpu10k.toFixed(3), r.head.cpu10k.toFixed(3), r.cpuRatio.toFixed(3)])
  }
  return aligned(rows)
}

/** A temporary worktree of `ref`, with this checkout's node_modules; removed by the returned function. */
export function worktree (repo: string, ref: string): { dir: string; remove: () => void } {
  const parent = mkdtempSync(join(tmpdir(), 'pai-bench-base-'))
  const dir = join(parent, 'tree')
  execFileSync('git', ['-C', repo, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' })
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'))
  return {
    dir,
    remove: () => {
      execFileSync('git', ['-C', repo, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' })
      rmSync(parent, { recursive: true, force: true })
    }
  }
}
