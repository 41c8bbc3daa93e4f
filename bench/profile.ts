// Summarises a V8 .cpuprofile (from `npm run bench -- --profile DIR`, which runs the sidecar with
// --cpu-prof): the functions with the most self time, and the share of time under each package.
//   node bench/profile.ts DIR/CPU.*.cpuprofile [--top 25]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true })
const profile = JSON.parse(readFileSync(positionals[0] as string, 'utf8')) as { nodes: Node[] }
const total = profile.nodes.reduce((n, node) => n + node.hitCount, 0)
const where = (url: string): string => {
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 13).split('/').slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1).join('/')
  if (url.includes('/sidecar/')) return `sidecar/${url.slice(url.lastIndexOf('/sidecar/') + 9)}`
  return url.startsWith('node:') ? 'node core' : url === '' ? '(native/gc/idle)' : url
}
const self = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const n of profile.nodes) {
  const f = n.callFrame
  const key = `${f.functionName === '' ? '(anonymous)' : f.functionName}  ${where(f.url)}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`
  self.set(key, (self.get(key) ?? 0) + n.hitCount)
  byPackage.set(where(f.url), (byPackage.get(where(f.url)) ?? 0) + n.hitCount)
}
const pct = (n: number): string => `${(n / total * 100).toFixed(1).padStart(5)} %`
console.log(`${total} samples\n\nself time by function:`)
for (const [k, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(n)}  ${k}`)
console.log('\nself time by package:')
for (const [k, n] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(n)}  ${k}`)
