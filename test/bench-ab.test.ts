// bench:ab (bench/compare.ts), run with tiny durations: two sidecars loaded in turn, in alternating
// order, reported as medians and per-round ratios; and the base revision's throwaway worktree.
// Split from bench-smoke.test.ts so that neither file comes near tap's per-file limit on a busy
// CI machine. No figure is asserted: this machine is shared.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { formatAb, runAb, worktree } from '../bench/compare.ts'
import { defaultLoader } from '../bench/load.ts'

const wrk = defaultLoader() === 'wrk'
if (!wrk && process.env.CI !== undefined) throw new Error('CI must install Debian\'s wrk (see .ci/install-system-deps)')
// About 17 s alone.
t.setTimeout(120_000)

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pai-bench-ab-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the A/B run loads two sidecars in turn and reports medians and per-round ratios', { skip: wrk ? false : 'wrk not installed' }, async (t) => {
  const root = new URL('..', import.meta.url).pathname
  const lines: string[] = []
  // The same checkout on both sides (an A/A run): what matters here is the shape, not a figure.
  const result = await runAb({ baseDir: root, headDir: root, cases: ['small', 'preflight'], seconds: 0.5, rounds: 2, warmup: 0.2, connections: 2, loader: 'wrk', pin: true, log: (l) => lines.push(l) })
  t.same(Object.keys(result), ['small', 'preflight'])
  for (const r of Object.values(result)) {
    t.ok(r.base.rps > 0 && r.head.rps > 0 && r.base.cpu10k >= 0 && r.head.cpu10k >= 0)
    t.ok(r.rpsRatio > 0)
  }
  t.same(lines.slice(0, 4), ['round 1/2 small base done', 'round 1/2 small head done', 'round 1/2 preflight base done', 'round 1/2 preflight head done'])
  t.same(lines.slice(4, 6), ['round 2/2 small head done', 'round 2/2 small base done'], 'the order alternates between rounds')
  const table = formatAb({ small: { base: { rps: 1000, cpu10k: 2 }, head: { rps: 1500, cpu10k: 1.5 }, rpsRatio: 1.5, cpuRatio: 0.75 } })
  t.match(table, /^case +base req\/s +head req\/s +head ÷ base +base CPU s\/10k +head CPU s\/10k +head ÷ base\nsmall +1000 +1500 +1\.500 +2\.000 +1\.500 +0\.750$/)
})

t.test('the A/B base: a detached worktree of the ref, with the checkout\'s node_modules, removed afterwards', async (t) => {
  const repo = tempDir(t)
  const git = (...args: string[]): string => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' })
  git('init', '-q')
  writeFileSync(join(repo, 'file.txt'), 'first\n')
  git('add', 'file.txt')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.test', 'commit', '-qm', 'first')
  const first = git('rev-parse', 'HEAD').trim()
  writeFileSync(join(repo, 'file.txt'), 'second\n')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.test', 'commit', '-qam', 'second')
  mkdirSync(join(repo, 'node_modules'))
  const tree = worktree(repo, first)
  t.equal(readFileSync(join(tree.dir, 'file.txt'), 'utf8'), 'first\n', 'the base revision, not the working tree')
  t.equal(realpathSync(join(tree.dir, 'node_modules')), realpathSync(join(repo, 'node_modules')), 'dependencies are shared, not installed again')
  tree.remove()
  t.notOk(existsSync(dirname(tree.dir)), 'removed, with the temporary directory that held it')
  t.notMatch(git('worktree', 'list'), tree.dir, 'and unregistered from the repository')
})
