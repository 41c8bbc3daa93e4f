// `npm run bench:ab -- --base <git ref>`: this tree's sidecar against another revision's
// (bench/compare.ts measures). The base is checked out into a temporary git worktree, or taken from
// `--base-dir DIR`, a checkout that already exists.
//   npm run bench:ab -- --base main [--cases small,preflight,ai --seconds 3 --rounds 6 --connections 64]
//   npm run bench:ab -- --base HEAD --head-flags=--max-semi-space-size=64   # one tree, a Node flag A/B
import { parseArgs } from 'node:util'
import { formatAb, runAb, worktree, type AbCase } from './compare.ts'
import { DEFAULTS } from './harness.ts'
import { defaultLoader, type Loader } from './load.ts'

const { values: v } = parseArgs({
  options: {
    base: { type: 'string' },
    'base-dir': { type: 'string' },
    cases: { type: 'string', default: 'small,preflight' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: String(DEFAULTS.connections) },
    loader: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    'head-flags': { type: 'string', default: '' }
  }
})
const head = new URL('..', import.meta.url).pathname
if ((v.base === undefined) === (v['base-dir'] === undefined)) {
  console.error('give the base revision: --base <git ref> or --base-dir <checkout>')
  process.exit(2)
}
const tree = v.base === undefined ? undefined : worktree(head, v.base)
try {
  const result = await runAb({
    baseDir: tree?.dir ?? (v['base-dir'] as string),
    headDir: head,
    headFlags: (v['head-flags'] as string).split(' ').filter((f) => f !== ''),
    cases: (v.cases as string).split(',') as AbCase[],
    seconds: Number(v.seconds),
    rounds: Number(v.rounds),
    warmup: Number(v.warmup),
    connections: Number(v.connections),
    loader: (v.loader ?? defaultLoader()) as Loader,
    pin: v['no-pin'] !== true,
    log: (line) => process.stderr.write(`${line}\n`)
  })
  console.log(formatAb(result))
  console.log('\nhead ÷ base below 1 on CPU (above 1 on req/s) means the working tree is cheaper.')
} finally {
  tree?.remove()
}
