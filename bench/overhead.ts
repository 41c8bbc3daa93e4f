// What metrics and request logging cost on small requests: the same sidecar with both on ("full")
// and both off ("bare"), in front of the same fast upstream, measured alternately in one run so
// machine noise hits both. `npm run bench:overhead [-- --seconds 5 --rounds 3]`.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, connections: { type: 'string', default: '32' } } })
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)

async function start (...args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(child.stdout as NodeJS.ReadableStream, 'data') as [Buffer]
  return { url: line.toString().trim(), child }
}

async function load (url: string, preflight: boolean): Promise<{ rps: number; p99: number }> {
  const r = await autocannon({
    url: `${url}/process/text`,
    connections,
    duration: seconds,
    method: preflight ? 'OPTIONS' : 'POST',
    headers: preflight
      ? { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
      : { origin: 'https://app.example.com', 'content-type': 'application/json' },
    body: preflight ? undefined : JSON.stringify({ text: ['x'.repeat(1000)] })
  })
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${r.non2xx} non-2xx and ${r.errors} errors against ${url}`)
  return { rps: r.requests.average, p99: r.latency.p99 }
}

const upstream = await start('bench/upstream.ts')
const full = await start('bench/variant.ts', upstream.url, 'full')
const bare = await start('bench/variant.ts', upstream.url, 'bare')
const results: Record<string, { rps: number[]; p99: number[] }> = {}
for (let round = 0; round < rounds; round++) {
  for (const [name, target] of [['full', full], ['bare', bare]] as const) {
    for (const kind of ['POST 1 KiB', 'preflight']) {
      const key = `${kind} ${name}`
      const r = await load(target.url, kind === 'preflight')
      ;(results[key] ??= { rps: [], p99: [] }).rps.push(r.rps)
      results[key].p99.push(r.p99)
    }
  }
}
full.child.kill()
bare.child.kill()
upstream.child.kill()

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
console.log(`${rounds} rounds × ${seconds} s, ${connections} connections, medians:`)
console.log('case                       req/s     p99 ms')
for (const [key, r] of Object.entries(results)) console.log(`${key.padEnd(24)} ${median(r.rps).toFixed(0).padStart(8)} ${median(r.p99).toFixed(1).padStart(9)}`)
for (const kind of ['POST 1 KiB', 'preflight']) {
  const ratio = median((results[`${kind} full`] as { rps: number[] }).rps) / median((results[`${kind} bare`] as { rps: number[] }).rps)
  console.log(`${kind}: full / bare throughput = ${ratio.toFixed(3)} (observability costs ${((1 - ratio) * 100).toFixed(1)} %)`)
}
