// `npm run bench:tls [-- --seconds 5 --rounds 2 --clients 64 --streams 8 --no-pin]`: the HTTPS cases
// (docs/BENCHMARKS.md, "HTTPS"): the sidecar with server.tls against nginx configured for the same
// (TLS 1.3, ALPN h2 and http/1.1 (`listen … ssl http2`, nginx 1.22's form), the same CORS policy and upstream pool), both in front of the
// bench upstream. h2load (Debian's nghttp2-client) loads both, for HTTP/1.1 over TLS (--h1) and for
// HTTP/2 (`--clients` / `--streams` connections of `--streams` streams each, the same requests in
// flight as HTTP/1.1's `--clients` connections): a small JSON POST and an allowed
// preflight. A throwaway certificate is made with openssl in the run's temp directory.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { freePort, pinning, sidecarConfig, spawnPinned, startUpstream, stop, waitForPort, type Proc } from './harness.ts'
import { nginxArgs, nginxBinary, nginxConfig } from './nginx.ts'
import { ORIGIN, ORIGINS } from './policy.ts'

const { values: v } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    clients: { type: 'string', default: '64' },
    streams: { type: 'string', default: '8' },
    'no-pin': { type: 'boolean', default: false }
  }
})
const H2LOAD = '/usr/bin/h2load'

/** nginx's benchmark site (bench/nginx.ts), listening with TLS and HTTP/2 instead of plain HTTP. */
function nginxTls (prefix: string, port: number, upstream: string, cert: string, key: string): string {
  return nginxConfig({ prefix, port, upstream, keepalive: 64 }, ORIGINS)
    .replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port} ssl http2;\n    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    http2_max_concurrent_streams 100;`)
}

interface Case { name: string, h1: boolean, preflight: boolean }
const CASES: Case[] = [
  { name: 'small POST, HTTP/1.1 over TLS', h1: true, preflight: false },
  { name: 'small POST, HTTP/2', h1: false, preflight: false },
  { name: 'preflight, HTTP/1.1 over TLS', h1: true, preflight: true },
  { name: 'preflight, HTTP/2', h1: false, preflight: true }
]

/** One h2load run: requests per second, and how many failed. */
function h2load (loaders: string[], url: string, c: Case, dataFile: string): { rps: number, failed: number } {
  // The same 64 requests in flight either way: 64 connections of one request, or 8 of 8 streams.
  const streams = Number(v.streams)
  const clients = c.h1 ? Number(v.clients) : Math.max(1, Math.floor(Number(v.clients) / streams))
  const args = ['-D', v.seconds as string, '-c', String(clients), '-m', c.h1 ? '1' : String(streams), '-H', `origin: ${ORIGIN}`]
  if (c.h1) args.push('--h1')
  if (c.preflight) args.push('-H', ':method: OPTIONS', '-H', 'access-control-request-method: POST', '-H', 'access-control-request-headers: content-type')
  else args.push('-d', dataFile, '-H', 'content-type: application/json')
  const [cmd, ...pre] = [...loaders, H2LOAD]
  const r = spawnSync(cmd as string, [...pre, ...args, `${url}/process/text`], { encoding: 'utf8' })
  const rps = /finished in [^,]+, ([0-9.]+) req\/s/.exec(r.stdout)
  const status = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout)
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout)
  if (rps === null || status === null || codes === null) throw new Error(`h2load printed no result:\n${r.stdout}\n${r.stderr}`)
  return { rps: Number(rps[1]), failed: Number(status[2]) + Number(status[3]) + Number(codes[3]) + Number(codes[4]) }
}

const { pinned, servers, loaders } = pinning(v['no-pin'] !== true)
const dir = mkdtempSync(join(tmpdir(), 'pai-bench-tls-'))
const devnull = openSync('/dev/null', 'w')
const procs: Proc[] = []
try {
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' })
  const data = join(dir, 'body.json')
  writeFileSync(data, JSON.stringify({ text: ['My name is Jane Doe and my phone number is 555-0100.'] }))
  const { proc: upstream, url: upstreamUrl } = await startUpstream(servers)
  procs.push(upstream)
  const [port, adminPort] = [await freePort(), await freePort()]
  const config = sidecarConfig(port, adminPort, upstreamUrl).replace('log: { level: info }', 'log: { level: info }').replace(/^server: \{ host: 127\.0\.0\.1, port: (\d+) \}$/m, `server: { host: 127.0.0.1, port: $1, tls: { certFile: ${cert}, keyFile: ${key} } }`)
  writeFileSync(join(dir, 'sidecar.yaml'), config)
  const sidecar = spawnPinned(servers, process.execPath, [new URL('../sidecar/main.ts', import.meta.url).pathname, '--config', join(dir, 'sidecar.yaml')], devnull)
  procs.push(sidecar)
  await waitForPort(port, sidecar.child)
  const targets: [string, string][] = [['sidecar', `https://127.0.0.1:${port}`]]
  const nginx = nginxBinary()
  if (nginx !== undefined) {
    const nginxPort = await freePort()
    writeFileSync(join(dir, 'nginx.conf'), nginxTls(dir, nginxPort, upstreamUrl, cert, key))
    const proc = spawnPinned(servers, nginx, nginxArgs(dir), devnull)
    procs.push(proc)
    await waitForPort(nginxPort, proc.child)
    targets.push(['nginx', `https://127.0.0.1:${nginxPort}`])
  }
  await sleep(500)
  const rounds = Number(v.rounds)
  const results: Record<string, Record<string, number[]>> = {}
  for (let round = 0; round < rounds; round++) {
    for (const c of CASES) {
      for (const [name, url] of targets) {
        const r = h2load(loaders, url, c, data)
        if (r.failed > 0) throw new Error(`${name}, ${c.name}: ${r.failed} requests failed`)
        ;((results[c.name] ??= {})[name] ??= []).push(r.rps)
        process.stderr.write(`round ${round + 1} ${c.name} ${name}: ${r.rps.toFixed(0)} req/s\n`)
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  console.log(`HTTPS cases: ${v.seconds} s × ${rounds} rounds, ${v.clients} requests in flight (HTTP/2: ${v.streams} streams per connection), pinned: ${String(pinned)}, node ${process.version}`)
  console.log('| case | sidecar req/s | nginx req/s | sidecar / nginx |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const c of CASES) {
    const s = median(results[c.name]?.sidecar ?? [])
    const n = results[c.name]?.nginx
    console.log(`| ${c.name} | ${s.toFixed(0)} | ${n === undefined ? '—' : median(n).toFixed(0)} | ${n === undefined ? '—' : (s / median(n)).toFixed(2)} |`)
  }
} finally {
  for (const p of procs.reverse()) await stop(p)
  rmSync(dir, { recursive: true, force: true })
}
