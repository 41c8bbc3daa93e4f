// What metrics and request logging cost on small requests: the same sidecar with both on ("full"),
// each alone ("metrics", "logs") and both off ("bare"), in front of the same fast upstream, measured
// in turn within each round so machine noise hits all of them. `npm run bench:overhead [-- --seconds 5 --rounds 3]`.
// `npm run bench` (bench/run.ts) compares the shipped sidecar with direct access and nginx.
import { parseArgs } from 'node:util'
import { startPrinting, startUpstream, stop } from './harness.ts'
import { defaultLoader, load as generate } from './load.ts'
import { median as med } from './report.ts'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, connections: { type: 'string', default: '32' } } })
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)
const loader = defaultLoader()

// The load generator runs in its own process (bench/load.ts), never in one of the measured ones.
async function load (url: string, preflight: boolean): Promise<{ rps: number; p99: number }> {
  const r = await generate(loader, {
    url: `${url}/process/text`,
    connections,
    seconds,
    method: preflight ? 'OPTIONS' : 'POST',
    headers: preflight
      ? { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
      : { origin: 'https://app.example.com', 'content-type': 'application/json' },
    body: preflight ? undefined : JSON.stringify({ text: ['x'.repeat(1000)] })
  })
  if (r.errors > 0) throw new Error(`${r.errors} errors or non-2xx answers against ${url}`)
  return { rps: r.rps, p99: r.p99 }
}

// Unpinned: the four variants share the machine alike. startPrinting() bounds each start.
const upstream = await startUpstream([])
const variants = ['full', 'metrics', 'logs', 'bare']
const variant = new URL('variant.ts', import.meta.url).pathname
const targets = await Promise.all(variants.map(async (v) => [v, await startPrinting([], [variant, upstream.url, v])] as const))
const results: Record<string, { rps: number[]; p99: number[] }> = {}
for (let round = 0; round < rounds; round++) {
  for (const [name, target] of targets) {
    for (const kind of ['POST 1 KiB', 'preflight']) {
      const key = `${kind} ${name}`
      const r = await load(target.url, kind === 'preflight')
      ;(results[key] ??= { rps: [], p99: [] }).rps.push(r.rps)
      results[key].p99.push(r.p99)
    }
  }
}
for (const [, target] of targets) await stop(target.proc)
await stop(upstream.proc)

const median = (xs: number[]): number => med(xs) as number
console.log(`${rounds} rounds × ${seconds} s, ${connections} connections, load by ${loader}, medians:`)
console.log('case                       req/s     p99 ms')
for (const [key, r] of Object.entries(results)) console.log(`${key.padEnd(24)} ${median(r.rps).toFixed(0).padStart(8)} ${median(r.p99).toFixed(1).padStart(9)}`)
for (const kind of ['POST 1 KiB', 'preflight']) {
  const bare = median((results[`${kind} bare`] as { rps: number[] }).rps)
  for (const v of variants.slice(0, -1)) {
    const ratio = median((results[`${kind} ${v}`] as { rps: number[] }).rps) / bare
    console.log(`${kind}: ${v} / bare throughput = ${ratio.toFixed(3)} (costs ${((1 - ratio) * 100).toFixed(1)} %)`)
  }
}
