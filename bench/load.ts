// The load generators, each in its own process (autocannon inside the measured process would take
// CPU from the target): wrk when installed (C, cheap per request, microsecond latencies), else
// autocannon's CLI. Both answer the same shape, so the harness never knows which one ran.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export type Loader = 'wrk' | 'autocannon'

export const WRK = '/usr/bin/wrk'

/** wrk when installed, autocannon otherwise. */
export function defaultLoader (wrk = WRK): Loader {
  return existsSync(wrk) ? 'wrk' : 'autocannon'
}

export interface LoadSpec {
  url: string
  method: 'POST' | 'OPTIONS'
  headers: Record<string, string>
  body?: string | undefined
  connections: number
  seconds: number
}

export interface LoadResult {
  requests: number
  /** Requests per second over the measured duration. */
  rps: number
  p50: number
  p99: number
  /** Transport errors and non-2xx answers: a run with any of them is not a measurement. */
  errors: number
}

const execFileP = promisify(execFile)

/**
 * Runs the command, prefixed by `prefix` (taskset …), and returns its stdout; rejects when it fails
 * or is still running after `ms` (then it is killed: a load generator that never ends must not hang
 * the benchmark or the test that runs it).
 */
export async function run (prefix: string[], cmd: string, args: string[], ms: number): Promise<string> {
  const all = [...prefix, cmd, ...args]
  try {
    return (await execFileP(all[0] as string, all.slice(1), { maxBuffer: 16 * 1024 * 1024, timeout: ms, killSignal: 'SIGKILL' })).stdout
  } catch (err) {
    if ((err as { killed?: boolean }).killed === true) throw new Error(`${cmd} was still running after ${ms / 1000} s and was killed`)
    throw err
  }
}

/** How long a load of `seconds` may take: its duration, plus starting up and wrk's 10 s request timeout. */
const limit = (seconds: number): number => (seconds + 30) * 1000

const lua = (s: string): string => JSON.stringify(s) // a JSON string literal is a valid Lua one here

/** wrk's script: the request, and a `done` that prints the figures as one JSON line. */
export function wrkScript (spec: LoadSpec): string {
  const headers = Object.entries(spec.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}\n`).join('')
  return `wrk.method = ${lua(spec.method)}\n${spec.body === undefined ? '' : `wrk.body = ${lua(spec.body)}\n`}${headers}` +
    'done = function (s, latency)\n' +
    '  local e = s.errors\n' +
    '  io.write(string.format(\'{"requests":%d,"us":%d,"p50":%d,"p99":%d,"errors":%d}\\n\', s.requests, s.duration,\n' +
    '    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))\n' +
    'end\n'
}

async function wrk (spec: LoadSpec, prefix: string[]): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pai-bench-wrk-'))
  try {
    const script = join(dir, 'load.lua')
    writeFileSync(script, wrkScript(spec))
    // wrk takes whole seconds; one thread, since the load has one core.
    const out = await run(prefix, WRK, ['-t1', `-c${spec.connections}`, `-d${Math.max(1, Math.round(spec.seconds))}s`, '--timeout', '10s', '-s', script, spec.url], limit(spec.seconds))
    const r = JSON.parse(out.slice(out.lastIndexOf('{'))) as { requests: number; us: number; p50: number; p99: number; errors: number }
    return { requests: r.requests, rps: r.requests / (r.us / 1e6), p50: r.p50 / 1000, p99: r.p99 / 1000, errors: r.errors }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')

async function autocannon (spec: LoadSpec, prefix: string[]): Promise<LoadResult> {
  const args = [AUTOCANNON, '--json', '--no-progress', '-c', String(spec.connections), '-d', String(spec.seconds), '-m', spec.method]
  for (const [k, v] of Object.entries(spec.headers)) args.push('-H', `${k}=${v}`)
  if (spec.body !== undefined) args.push('-b', spec.body)
  const r = JSON.parse(await run(prefix, process.execPath, [...args, spec.url], limit(spec.seconds))) as {
    requests: { total: number }; duration: number; latency: { p50: number; p99: number }; errors: number; non2xx: number; timeouts: number
  }
  return { requests: r.requests.total, rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx + r.timeouts }
}

export function load (loader: Loader, spec: LoadSpec, prefix: string[] = []): Promise<LoadResult> {
  return loader === 'wrk' ? wrk(spec, prefix) : autocannon(spec, prefix)
}
