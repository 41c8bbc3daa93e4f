// Summarises a V8 .cpuprofile (from `npm run bench -- --profile DIR`, which runs the sidecar with
// --cpu-prof): the functions with the most self time, the functions with the most time under them
// (inclusive: where a request's CPU goes, e.g. pino's write or undici's parser), and the share of
// time under each package. Shares are of the busy samples: idle time (the profile covers the whole
// run, start-up and pauses between cases included) is left out of every percentage.
//   node bench/profile.ts DIR/CPU.*.cpuprofile [--top 25] [--match sidecar]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, match: { type: 'string', default: '' } }, allowPositionals: true })
const profile = JSON.parse(readFileSync(positionals[0] as string, 'utf8')) as { nodes: Node[] }
const where = (url: string): string => {
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 13).split('/').slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1).join('/')
  if (url.includes('/sidecar/')) return `sidecar/${url.slice(url.lastIndexOf('/sidecar/') + 9)}`
  return url.startsWith('node:') ? 'node core' : url === '' ? '(native/gc)' : url
}
const label = (f: Node['callFrame']): string => `${f.functionName === '' ? '(anonymous)' : f.functionName}  ${where(f.url)}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const byPackage = new Map<string, number>()
let busy = 0
let idle = 0
for (const n of profile.nodes) {
  if (n.hitCount === 0) continue
  if (n.callFrame.functionName === '(idle)') { idle += n.hitCount; continue }
  busy += n.hitCount
  self.set(label(n.callFrame), (self.get(label(n.callFrame)) ?? 0) + n.hitCount)
  byPackage.set(where(n.callFrame.url), (byPackage.get(where(n.callFrame.url)) ?? 0) + n.hitCount)
  // Every distinct function on the stack once (a recursive one is not counted twice).
  const seen = new Set<string>()
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const key = label((byId.get(id) as Node).callFrame)
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + n.hitCount)
  }
}
const top = Number(values.top)
const pct = (n: number): string => `${(n / busy * 100).toFixed(1).padStart(5)} %`
const list = (m: Map<string, number>, n: number): void => {
  for (const [k, v] of [...m].filter(([k]) => k.includes(values.match)).sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(v)}  ${k}`)
}
console.log(`${busy} busy samples (${idle} idle left out)\n\nself time by function:`)
list(self, top)
console.log('\ninclusive time by function (itself and everything it called):')
list(inclusive, top)
console.log('\nself time by package:')
list(byPackage, 15)
