// The demo (README, "Demo"): the stand-in API, the sidecar with examples/demo/policy.yaml, and a small web
// app served from two origins — one the policy allows (http://localhost:5173) and one it does not
// (http://127.0.0.1:5174) — so a person sees in their own browser what CORS lets through and why.
// It reuses the sidecar's own serve() and stand-in, as `npm run dev` does; main.ts is the command.
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { DestinationStream } from 'pino'
import { explain, formatExplanation } from '../../sidecar/cli/explain.ts'
import { openFileSource } from '../../sidecar/config/file-source.ts'
import { loadConfig, loadConfigText, type Overrides } from '../../sidecar/config/load.ts'
import { serve } from '../../sidecar/server.ts'
import { startStandin } from '../../test/standin/server.ts'

export const DEFAULT_POLICY = join(import.meta.dirname, 'policy.yaml')
/** Everything listens here: the demo is for one person's browser, never the network. */
const HOST = '127.0.0.1'

export interface DemoOptions {
  policy: string
  /** undefined: the policy file's server.port / admin.port (8000 / 9090). */
  sidecarPort: number | undefined
  adminPort: number | undefined
  appPort: number
  otherPort: number
  /** Where the sidecar's log lines go (tests); stdout otherwise. */
  destination?: DestinationStream | undefined
}

export interface Demo {
  /** The page the person opens (allowed origin). */
  appUrl: string
  /** The same page from an origin the policy does not allow (shown in an iframe). */
  otherUrl: string
  sidecarUrl: string
  adminUrl: string
  standinUrl: string
  /** Ctrl-C: the sidecar drains (policy shutdown.delay), then everything closes; twice stops at once. */
  shutdown: (reason: string) => void
  /** Resolves with the exit code once everything is closed. */
  done: Promise<number>
}

export const USAGE = `Usage: npm run demo -- [--app-port 5173] [--other-port 5174] [--sidecar-port N] [--admin-port N] [--policy FILE]
  Starts the development stand-in API (NOT Private AI), the sidecar with the demo policy, and the demo
  page on two origins (allowed and not allowed), all on 127.0.0.1. Ctrl-C stops everything.
`

function port (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new Error(`--${name}: "${value}" is not a port number`)
  return Number(value)
}

/** argv → options; throws a readable Error on bad input. */
export function parseDemoArgs (argv: string[]): DemoOptions {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'app-port': { type: 'string' },
      'other-port': { type: 'string' },
      'sidecar-port': { type: 'string' },
      'admin-port': { type: 'string' },
      policy: { type: 'string' }
    }
  })
  return {
    policy: v.policy ?? DEFAULT_POLICY,
    sidecarPort: port(v['sidecar-port'], 'sidecar-port'),
    adminPort: port(v['admin-port'], 'admin-port'),
    appPort: port(v['app-port'], 'app-port') ?? 5173,
    otherPort: port(v['other-port'], 'other-port') ?? 5174
  }
}

// The page, its script and style: a fixed list, so no request path ever touches the file system.
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' }
}

interface PageConfig { sidecar: string; appOrigin: string; otherOrigin: string }

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

/**
 * The static site, on both origins. `/explain` runs the sidecar's own `explain` (the functions that
 * answer live requests) for the page's own origin: a browser reports a CORS failure only as
 * "Failed to fetch" and hides the 403 body from the page, so the page asks its own server why.
 */
function site (config: () => PageConfig, policy: string, overrides: Overrides) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url as string).replace(/\?.*$/s, '')
    if (path === '/config.json') return json(res, 200, config())
    if (path === '/explain') {
      const origin = `http://${req.headers.host as string}`
      // Read again on every call: the sidecar reloads the file too, so both follow an edit.
      const loaded = await loadConfig(policy, overrides)
      if (!loaded.ok) return json(res, 200, { origin, verdict: 'invalid_policy', failures: [], hints: loaded.errors, text: loaded.errors.join('\n') })
      const e = explain(loaded.snapshot, { origin, method: 'POST', headers: ['content-type'], privateNetwork: false, path: '/process/text' })
      // The page's JSON POST is always preflighted, and the preflight is where an origin is refused.
      const preflight = e.preflight as NonNullable<typeof e.preflight>
      return json(res, 200, { origin, verdict: e.verdict, failures: preflight.decision.failures, hints: e.hints, text: formatExplanation(e) })
    }
    const file = FILES[path]
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n')
      return
    }
    const body = await readFile(join(import.meta.dirname, file.file))
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(body)
  }
}

async function listen (server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, HOST, () => { server.off('error', reject); resolve() })
  })
  return (server.address() as AddressInfo).port
}

async function closeServer (server: Server): Promise<void> {
  // Browsers keep connections open: a page left open must not hold the demo's exit.
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** `http://127.0.0.1:P` → `http://localhost:P`: the name the page and the policy use. */
const localhost = (url: string): string => url.replace('//127.0.0.1:', '//localhost:')

export async function startDemo (opts: DemoOptions): Promise<Demo> {
  const opened = await openFileSource(opts.policy)
  if (!opened.ok) throw new Error(opened.errors.join('\n'))
  const standin = await startStandin({ host: HOST, port: 0 })
  const cleanup: Array<() => Promise<void>> = [() => standin.close()]
  const stopAll = async (): Promise<void> => { await Promise.all(cleanup.map((c) => c())) }
  try {
    const overrides: Overrides = { upstream: standin.url, host: HOST, port: opts.sidecarPort, adminPort: opts.adminPort }
    const loaded = loadConfigText(opened.source.text, opened.source.name, overrides)
    if (!loaded.ok) throw new Error(`${opts.policy}: configuration invalid\n${loaded.errors.join('\n')}`)
    let pageConfig: PageConfig | undefined
    const handler = site(() => pageConfig as PageConfig, opts.policy, overrides)
    const listener = (req: IncomingMessage, res: ServerResponse): void => { void handler(req, res) }
    const servers = [createServer(listener), createServer(listener)] as const
    for (const s of servers) cleanup.push(() => closeServer(s))
    const appPort = await listen(servers[0], opts.appPort)
    const otherPort = await listen(servers[1], opts.otherPort)
    const running = await serve(loaded.snapshot, {
      version: 'demo',
      destination: opts.destination,
      overrides,
      source: opened.source
    })
    const appUrl = `http://localhost:${appPort}`
    const otherUrl = `http://127.0.0.1:${otherPort}`
    pageConfig = { sidecar: localhost(running.publicUrl), appOrigin: appUrl, otherOrigin: otherUrl }
    return {
      appUrl,
      otherUrl,
      sidecarUrl: localhost(running.publicUrl),
      adminUrl: localhost(running.adminUrl),
      standinUrl: standin.url,
      shutdown: running.shutdown,
      done: running.done.then(async (code) => { await stopAll(); return code })
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}
