// The HTTPS cases (docs/BENCHMARKS.md, "HTTPS"): the sidecar with server.tls against nginx configured
// for the same (TLS 1.2 and 1.3, ALPN h2 and http/1.1 with `listen … ssl http2`, nginx 1.22's form, the
// same CORS policy and upstream pool), both in front of the bench upstream. h2load (Debian's
// nghttp2-client) loads both, for HTTP/1.1 over TLS (--h1) and for HTTP/2 (clients / streams
// connections of `streams` streams each, the same requests in flight as HTTP/1.1's `clients`
// connections): a small JSON POST and an allowed preflight. A throwaway certificate is made with
// openssl in the run's temp directory. `npm run bench` runs them after its own cases; `npm run
// bench:tls` runs them alone.
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, pinning, sidecarConfig, spawnPinned, startUpstream, stop, waitForPort, type Proc } from './harness.ts'
import { nginxArgs, nginxConfig } from './nginx.ts'
import { ORIGIN, ORIGINS } from './policy.ts'
import { median } from './report.ts'

export const H2LOAD = '/usr/bin/h2load'

/** The markers of the HTTPS results in docs/BENCHMARKS.md, which `npm run bench` rewrites. */
export const TLS_BEGIN = '<!-- bench:tls -->'
export const TLS_END = '<!-- /bench:tls -->'

/** h2load's path, or undefined when nghttp2-client is not installed. */
export function h2loadBinary (path = H2LOAD): string | undefined {
  return existsSync(path) ? path : undefined
}

/** nginx's benchmark site (bench/nginx.ts), listening with TLS and HTTP/2 instead of plain HTTP. */
export function nginxTls (prefix: string, port: number, upstream: string, cert: string, key: string): string {
  return nginxConfig({ prefix, port, upstream, keepalive: 64 }, ORIGINS)
    .replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port} ssl http2;\n    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    http2_max_concurrent_streams 100;`)
}

export interface TlsCase { name: string, h1: boolean, preflight: boolean }
export const TLS_CASES: readonly TlsCase[] = [
  { name: 'small POST, HTTP/1.1 over TLS', h1: true, preflight: false },
  { name: 'small POST, HTTP/2', h1: false, preflight: false },
  { name: 'preflight, HTTP/1.1 over TLS', h1: true, preflight: true },
  { name: 'preflight, HTTP/2', h1: false, preflight: true }
]

export interface TlsOptions {
  seconds: number
  rounds: number
  /** Requests in flight: HTTP/1.1 connections, or HTTP/2 connections × streams. */
  clients: number
  streams: number
  pin: boolean
  /** nginx's path; undefined: the sidecar alone. */
  nginx: string | undefined
  log: (line: string) => void
}

export interface TlsRow { case: string, sidecar: number, nginx: number | undefined }
export interface TlsReport { meta: { seconds: number, rounds: number, clients: number, streams: number, pinned: boolean, node: string }, rows: TlsRow[] }

/** h2load's arguments for one case against `url`. */
export function h2loadArgs (o: Pick<TlsOptions, 'seconds' | 'clients' | 'streams'>, c: TlsCase, url: string, dataFile: string): string[] {
  const clients = c.h1 ? o.clients : Math.max(1, Math.floor(o.clients / o.streams))
  const args = ['-D', String(o.seconds), '-c', String(clients), '-m', c.h1 ? '1' : String(o.streams), '-H', `origin: ${ORIGIN}`]
  if (c.h1) args.push('--h1')
  if (c.preflight) args.push('-H', ':method: OPTIONS', '-H', 'access-control-request-method: POST', '-H', 'access-control-request-headers: content-type')
  else args.push('-d', dataFile, '-H', 'content-type: application/json')
  return [...args, `${url}/process/text`]
}

/**
 * h2load's summary → requests per second. A run in which any request failed, errored or was answered
 * 4xx or 5xx measured something other than the case, and is an error naming `what`.
 */
export function parseH2load (stdout: string, what: string): number {
  const rps = /finished in [^,]+, ([0-9.]+) req\/s/.exec(stdout)
  const status = /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored/.exec(stdout)
  const codes = /status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout)
  if (rps === null || status === null || codes === null) throw new Error(`${what}: h2load printed no result:\n${stdout}`)
  const failed = Number(status[1]) + Number(status[2]) + Number(codes[1]) + Number(codes[2])
  if (failed > 0) throw new Error(`${what}: ${failed} requests failed`)
  return Number(rps[1])
}

/** Each case's median requests per second, per target (nginx absent when it did not run). */
export function tlsRows (samples: Record<string, Record<string, number[]>>): TlsRow[] {
  return TLS_CASES.map((c) => {
    const nginx = samples[c.name]?.nginx
    return { case: c.name, sidecar: median(samples[c.name]?.sidecar as number[]) as number, nginx: nginx === undefined ? undefined : median(nginx) }
  })
}

/** Starts the upstream, the TLS sidecar and (when given) nginx with TLS, loads each case in turn per round. */
export async function runTlsBench (o: TlsOptions): Promise<TlsReport> {
  const { pinned, servers, loaders } = pinning(o.pin)
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
    const config = sidecarConfig(port, adminPort, upstreamUrl).replace(/^server: \{ host: 127\.0\.0\.1, port: (\d+) \}$/m, `server: { host: 127.0.0.1, port: $1, tls: { certFile: ${cert}, keyFile: ${key} } }`)
    writeFileSync(join(dir, 'sidecar.yaml'), config)
    const sidecar = spawnPinned(servers, process.execPath, [new URL('../sidecar/main.ts', import.meta.url).pathname, '--config', join(dir, 'sidecar.yaml')], devnull)
    procs.push(sidecar)
    await waitForPort(port, sidecar.child)
    const targets: [string, string][] = [['sidecar', `https://127.0.0.1:${port}`]]
    if (o.nginx !== undefined) {
      const nginxPort = await freePort()
      writeFileSync(join(dir, 'nginx.conf'), nginxTls(dir, nginxPort, upstreamUrl, cert, key))
      const proc = spawnPinned(servers, o.nginx, nginxArgs(dir), devnull)
      procs.push(proc)
      await waitForPort(nginxPort, proc.child)
      targets.push(['nginx', `https://127.0.0.1:${nginxPort}`])
    }
    await sleep(500)
    const samples: Record<string, Record<string, number[]>> = {}
    for (let round = 0; round < o.rounds; round++) {
      for (const c of TLS_CASES) {
        for (const [name, url] of targets) {
          const [cmd, ...pre] = [...loaders, H2LOAD]
          const out = spawnSync(cmd as string, [...pre, ...h2loadArgs(o, c, url, data)], { encoding: 'utf8' })
          const rps = parseH2load(out.stdout, `${name}, ${c.name}`)
          ;((samples[c.name] ??= {})[name] ??= []).push(rps)
          o.log(`round ${round + 1} ${c.name} ${name}: ${rps.toFixed(0)} req/s`)
        }
      }
    }
    return { meta: { seconds: o.seconds, rounds: o.rounds, clients: o.clients, streams: o.streams, pinned, node: process.version }, rows: tlsRows(samples) }
  } finally {
    for (const p of procs.reverse()) await stop(p)
    closeSync(devnull)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The HTTPS results as a Markdown table, with the run's settings above it. */
export function formatTls (r: TlsReport): string {
  const m = r.meta
  const lines = [
    `HTTPS cases: ${m.seconds} s × ${m.rounds} rounds, ${m.clients} requests in flight (HTTP/2: ${m.streams} streams per connection), pinned: ${String(m.pinned)}, node ${m.node}`,
    '',
    '| case | sidecar req/s | nginx req/s | sidecar / nginx |',
    '| --- | ---: | ---: | ---: |'
  ]
  for (const row of r.rows) {
    const ratio = row.nginx === undefined ? '—' : (row.sidecar / row.nginx).toFixed(2)
    lines.push(`| ${row.case} | ${row.sidecar.toFixed(0)} | ${row.nginx === undefined ? '—' : row.nginx.toFixed(0)} | ${ratio} |`)
  }
  return lines.join('\n')
}
