// Command line: argv/env → a command. `serve` (the default), `--check-config`, `explain`.
// Returns an exit code; main.ts only hands it to the process. Output is written to the given
// streams (this is a CLI, not the request path: the PII-safe logger is for requests).
import { parseArgs } from 'node:util'
import { openFileSource } from '../config/file-source.ts'
import { loadConfig, type Overrides } from '../config/load.ts'
import { explain, formatExplanation } from './explain.ts'
import type { Io } from './io.ts'
import { openConfigMapMode } from './kube-mode.ts'
import { reportInvalid } from './report.ts'
import { loadMode, serveMode, type Mode } from './serve.ts'
import { startStandin, STANDIN_NOTE } from '../standin/server.ts'

export const USAGE = `Usage:
  pai-cors-sidecar [--config FILE] [--upstream URL] [--allow-origin ORIGIN]... [--host H] [--port N]
                   [--admin-port N] [--log-level LEVEL] [--standin]
                   [--config-source file|kubernetes] [--configmap NAME] [--configmap-key KEY]
      Run the sidecar. Without --config the built-in defaults apply (no origin allowed until you add one).
      --standin also starts the development stand-in for the Private AI API on a loopback port and
      forwards to it (no licence needed; it is NOT the real product).
      --config-source kubernetes reads the configuration from a ConfigMap through the API (in-cluster
      service account, or KUBECONFIG), follows its changes and records an Event on the pod for each;
      the namespace comes from POD_NAMESPACE, the pod from POD_NAME/POD_UID (the downward API).
  pai-cors-sidecar --check-config [FILE]
      Validate a configuration; print every problem with its path; exit 0 when valid, 2 when not.
  pai-cors-sidecar explain [--config FILE] --origin ORIGIN [--method M] [--header NAME]... [--path P]
                   [--private-network] [--self-origin ORIGIN] [--json]
      Show what the sidecar decides for one browser request, why, and the exact response headers.
      --self-origin is the sidecar's own origin as pages address it: a page there is same-origin.

Environment: PAI_SIDECAR_CONFIG, PAI_SIDECAR_UPSTREAM, PAI_SIDECAR_ALLOW_ORIGINS (comma-separated),
PAI_SIDECAR_PORT, PAI_SIDECAR_ADMIN_PORT, PAI_SIDECAR_LOG_LEVEL, PAI_SIDECAR_CONFIG_SOURCE,
PAI_SIDECAR_CONFIGMAP, PAI_SIDECAR_CONFIGMAP_KEY; flags win over the environment.
`

const OPTIONS = {
  config: { type: 'string' },
  'check-config': { type: 'boolean' },
  upstream: { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  'log-level': { type: 'string' },
  standin: { type: 'boolean' },
  'config-source': { type: 'string' },
  configmap: { type: 'string' },
  'configmap-key': { type: 'string' },
  origin: { type: 'string' },
  method: { type: 'string' },
  header: { type: 'string', multiple: true },
  path: { type: 'string' },
  'private-network': { type: 'boolean' },
  'self-origin': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' }
} as const

function port (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new Error(`${name}: "${value}" is not a port number`)
  return Number(value)
}

export async function run (argv: string[], env: NodeJS.ProcessEnv, io: Io, version = '0.0.0'): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`)
    return 64
  }
  const { values: v, positionals } = parsed
  if (v.help === true) { io.out(USAGE); return 0 }
  if (v.version === true) { io.out(`${version}\n`); return 0 }
  const command = positionals[0]
  if (command !== undefined && command !== 'explain' && !(v['check-config'] === true && positionals.length === 1)) {
    io.err(`unknown command "${command}"\n\n${USAGE}`)
    return 64
  }

  let overrides: Overrides
  try {
    overrides = overridesFrom(v, env)
  } catch (err) {
    io.err(`${(err as Error).message}\n`)
    return 64
  }

  if (v['check-config'] === true) {
    const file = command ?? v.config ?? env.PAI_SIDECAR_CONFIG
    const result = await loadConfig(file, overrides)
    if (!result.ok) return reportInvalid(result.errors, io)
    io.out(`${file ?? 'defaults'}: configuration valid (hash ${result.snapshot.hash})\n`)
    return 0
  }

  const configSource = v['config-source'] ?? env.PAI_SIDECAR_CONFIG_SOURCE ?? 'file'
  if (configSource !== 'file' && configSource !== 'kubernetes') {
    io.err(`--config-source: "${configSource}" is not file or kubernetes\n`)
    return 64
  }
  // One configuration source, picked here; serve() follows it.
  const mode = configSource === 'kubernetes' && command === undefined
    ? await kubernetesMode(v, env, overrides, io)
    : await fileMode(v, env, command === undefined, overrides, io)
  if (typeof mode === 'number') return mode
  return command === 'explain' ? await explainCommand(v, mode, overrides, io) : await serveMode(mode, overrides, version, io)
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values']

/** The flags and variables that override the file. Throws on a malformed port. */
function overridesFrom (v: Values, env: NodeJS.ProcessEnv): Overrides {
  const envOrigins = env.PAI_SIDECAR_ALLOW_ORIGINS?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return {
    upstream: v.upstream ?? env.PAI_SIDECAR_UPSTREAM,
    allowOrigins: v['allow-origin'] ?? envOrigins,
    host: v.host,
    port: port(v.port ?? env.PAI_SIDECAR_PORT, '--port'),
    adminPort: port(v['admin-port'] ?? env.PAI_SIDECAR_ADMIN_PORT, '--admin-port'),
    logLevel: v['log-level'] ?? env.PAI_SIDECAR_LOG_LEVEL
  }
}

/** File mode: the --config file (read once, then watched), or the built-in defaults; the stand-in if asked for. */
async function fileMode (v: Values, env: NodeJS.ProcessEnv, serving: boolean, overrides: Overrides, io: Io): Promise<Mode | number> {
  // The embedded default upstream: started first so the config is validated with its real URL.
  let standin
  try {
    standin = v.standin === true && serving ? await startStandin({ host: '127.0.0.1', port: 0 }) : undefined
  } catch (err) {
    // A built sidecar has no stand-in (sidecar/standin/server.ts says why): a usage error, not a crash.
    io.err(`${(err as Error).message}\n`)
    return 64
  }
  if (standin !== undefined) {
    overrides.upstream = standin.url
    io.err(`${STANDIN_NOTE}: ${standin.url}\n`)
  }
  const close = async (): Promise<void> => { await standin?.close() }
  const configPath = v.config ?? env.PAI_SIDECAR_CONFIG
  const opened = configPath === undefined ? undefined : await openFileSource(configPath)
  if (opened?.ok === false) {
    await close()
    return reportInvalid(opened.errors, io)
  }
  return { source: opened?.source, close }
}

async function kubernetesMode (v: Values, env: NodeJS.ProcessEnv, overrides: Overrides, io: Io): Promise<Mode | number> {
  const name = v.configmap ?? env.PAI_SIDECAR_CONFIGMAP
  const namespace = env.POD_NAMESPACE
  if (name === undefined || namespace === undefined) {
    io.err('--config-source kubernetes needs --configmap NAME (or PAI_SIDECAR_CONFIGMAP) and POD_NAMESPACE (downward API)\n')
    return 64
  }
  return await openConfigMapMode({
    namespace,
    name,
    key: v['configmap-key'] ?? env.PAI_SIDECAR_CONFIGMAP_KEY ?? 'config.yaml',
    pod: env.POD_NAME === undefined ? undefined : { name: env.POD_NAME, namespace, ...(env.POD_UID === undefined ? {} : { uid: env.POD_UID }) },
    kubeconfigPath: env.KUBECONFIG,
    logLevel: overrides.logLevel
  }, io)
}

async function explainCommand (v: Values, mode: Mode, overrides: Overrides, io: Io): Promise<number> {
  const result = loadMode(mode, overrides)
  if (!result.ok) return reportInvalid(result.errors, io)
  if (v.origin === undefined && v.method === undefined) {
    io.err('explain needs at least --origin (and usually --method and --header)\n')
    return 64
  }
  const snap = result.snapshot
  const e = explain(snap, {
    origin: v.origin,
    selfOrigin: v['self-origin'],
    method: v.method ?? 'GET',
    headers: v.header ?? [],
    privateNetwork: v['private-network'] === true,
    path: v.path
  })
  io.out(v.json === true ? `${JSON.stringify(e, null, 2)}\n` : formatExplanation(e))
  return e.verdict === 'denied' ? 1 : 0
}
