// What authentication costs per request (README, "Authentication"): `npm run bench:auth [-- --seconds 5
// --rounds 3 --connections 32 --iterations 20000]`. Two measurements:
//  1. in this process, Authenticator.authenticate() on one valid RS256 token whose key is cached:
//     the verification alone, in µs per call;
//  2. end to end, the same sidecar with auth off, with auth.jwt (a cached key) and with auth.apiKeys,
//     each in its own process in front of the bench upstream, measured in turn within each round: the
//     sidecar's CPU per request (from /proc) and its throughput, POST 1 KiB with Authorization.
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Authenticator } from '../sidecar/auth/authenticate.ts'
import { loadConfigText } from '../sidecar/config/load.ts'
import { AUDIENCE, startIdp } from '../test/fixtures/idp.ts'
import { cpuSeconds, startPrinting, startUpstream, stop } from './harness.ts'
import { defaultLoader, load } from './load.ts'
import { median } from './report.ts'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, connections: { type: 'string', default: '32' }, iterations: { type: 'string', default: '20000' } } })
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const connections = Number(values.connections)
const iterations = Number(values.iterations)
const loader = defaultLoader()

const idp = await startIdp()
const token = await idp.sign({ exp: Math.floor(Date.now() / 1000) + 3600 })
const API_KEY = 'bench-api-key-0123456789abcdef'
const keyFile = join(mkdtempSync(join(tmpdir(), 'pai-bench-auth-')), 'keys')
writeFileSync(keyFile, `${createHash('sha256').update(API_KEY).digest('hex')} bench\n`)

// 1. The verification alone.
const settings = loadConfigText(`auth: { jwt: { issuer: "${idp.issuer}", audiences: [${AUDIENCE}], jwksUrl: "${idp.jwksUrl}" } }`, 'bench')
if (!settings.ok || settings.snapshot.config.auth === undefined) throw new Error('bench configuration refused')
const quiet = { fetched: () => {}, reloaded: () => {}, rejected: () => {} }
const authenticator = new Authenticator(settings.snapshot.config.auth, quiet)
const headers = { authorization: `Bearer ${token}` }
if (!(await authenticator.authenticate(headers)).ok) throw new Error('the bench token is refused')
for (let i = 0; i < 2000; i++) await authenticator.authenticate(headers) // warm-up (JIT)
const started = process.hrtime.bigint()
for (let i = 0; i < iterations; i++) await authenticator.authenticate(headers)
const perCall = Number(process.hrtime.bigint() - started) / 1000 / iterations
authenticator.stop()

// 2. End to end.
const upstream = await startUpstream([])
const variants = ['off', 'jwt', 'api_key'] as const
const script = new URL('auth-variant.ts', import.meta.url).pathname
const targets = await Promise.all(variants.map(async (v) => [v, await startPrinting([], [script, upstream.url, v, idp.issuer, idp.jwksUrl, keyFile])] as const))
const results: Record<string, { rps: number[]; cpuUs: number[] }> = {}
for (let round = 0; round < rounds; round++) {
  // A rotating order, so drift on a shared machine hits every variant alike.
  for (let k = 0; k < targets.length; k++) {
    const [name, target] = targets[(k + round) % targets.length] as typeof targets[number]
    const credential: Record<string, string> = name === 'api_key' ? { 'x-api-key': API_KEY } : { authorization: `Bearer ${token}` }
    const before = cpuSeconds(target.proc.pid)
    const r = await load(loader, {
      url: `${target.url}/process/text`,
      method: 'POST',
      connections,
      seconds,
      headers: { origin: 'https://app.example.com', 'content-type': 'application/json', ...credential },
      body: JSON.stringify({ text: ['x'.repeat(1000)] })
    })
    const cpu = cpuSeconds(target.proc.pid) - before
    if (r.errors > 0) throw new Error(`${r.errors} errors or non-2xx answers against ${name}`)
    const entry = (results[name] ??= { rps: [], cpuUs: [] })
    entry.rps.push(r.rps)
    entry.cpuUs.push(cpu / r.requests * 1e6)
  }
}
for (const [, target] of targets) await stop(target.proc)
await stop(upstream.proc)
await idp.close()

const m = (xs: number[]): number => median(xs) as number
console.log(`jwtVerify with a cached RS256 key, in process: ${perCall.toFixed(1)} µs per request (${iterations} calls)`)
console.log(`end to end: ${rounds} rounds × ${seconds} s, ${connections} connections, POST 1 KiB, load by ${loader}, medians:`)
console.log('variant        req/s   sidecar CPU µs/request')
for (const v of variants) console.log(`${v.padEnd(10)} ${m(results[v]?.rps ?? []).toFixed(0).padStart(9)} ${m(results[v]?.cpuUs ?? []).toFixed(1).padStart(12)}`)
const off = results.off as { rps: number[]; cpuUs: number[] }
for (const v of ['jwt', 'api_key'] as const) {
  const r = results[v] as { rps: number[]; cpuUs: number[] }
  console.log(`${v}: +${(m(r.cpuUs) - m(off.cpuUs)).toFixed(1)} µs of sidecar CPU per request, throughput ${(m(r.rps) / m(off.rps)).toFixed(3)} × off`)
}
