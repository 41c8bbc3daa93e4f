// Kubernetes mode (`--config-source kubernetes`): the configuration comes from one ConfigMap read through
// the API, every change is applied as it happens, and each accepted or rejected change is recorded as
// an Event on the sidecar's own pod, so `kubectl describe pod` shows why an origin was not applied.
import type { Overrides } from '../config/load.ts'
import { loadConfigText } from '../config/load.ts'
import type { ReloadOutcome } from '../config/reload.ts'
import { startKubeSource, type KubeSource } from '../config/kube.ts'
import { createLogger } from '../log.ts'
import { serve, type Running } from '../server.ts'
import { reportInvalid } from './report.ts'
import type { Io } from './io.ts'

export interface KubeModeOptions {
  namespace: string
  name: string
  key: string
  pod: { name: string; namespace: string; uid?: string } | undefined
  /** A kubeconfig file (from KUBECONFIG) to use instead of the in-cluster service account. */
  kubeconfigPath: string | undefined
  overrides: Overrides
  version: string
}

/** The first problems of a rejected text, short enough for an Event note (the API caps it at 1 KiB). */
const firstErrors = (errors: string[]): string => errors.slice(0, 3).join('; ') + (errors.length > 3 ? ` (+${errors.length - 3} more)` : '')

export async function serveFromConfigMap (opts: KubeModeOptions, io: Io): Promise<number> {
  const log = createLogger(opts.overrides.logLevel ?? 'info')
  let kubeConfig: unknown
  if (opts.kubeconfigPath !== undefined) {
    // Loaded lazily, like everything from @kubernetes/client-node: file mode never pays for it.
    const { KubeConfig } = await import('@kubernetes/client-node')
    const kc = new KubeConfig()
    kc.loadFromFile(opts.kubeconfigPath)
    kubeConfig = kc
  }
  // Changes that arrive before the server is up are applied, in order, once it is.
  let up!: (running: Running) => void
  const ready = new Promise<Running>((resolve) => { up = resolve })
  let source: KubeSource
  const where = `configmap ${opts.namespace}/${opts.name} key ${opts.key}`
  try {
    source = await startKubeSource({
      namespace: opts.namespace,
      name: opts.name,
      key: opts.key,
      pod: opts.pod,
      kubeConfig,
      log,
      onText: (text) => { void ready.then((running) => running.reload(text)) },
      onProblem: (message) => { log.warn({ problem: message }, 'configuration source problem; keeping the last good configuration') }
    })
  } catch (err) {
    io.err(`${where}: ${(err as Error).message}\n`)
    return 2
  }
  const loaded = loadConfigText(source.initialText, where, opts.overrides)
  if (!loaded.ok) {
    await source.recordEvent('Warning', 'ConfigRejected', `refused to start: ${firstErrors(loaded.errors)}`)
    await source.stop()
    return reportInvalid(loaded.errors, io)
  }
  const onReload = (outcome: ReloadOutcome): void => {
    const pending = outcome.pendingRestart.length > 0 ? `; needs a restart to apply: ${outcome.pendingRestart.join(', ')}` : ''
    if (outcome.result === 'success') {
      void source.recordEvent('Normal', 'ConfigReloaded', `configuration ${outcome.snapshot.hash} applied${pending}`)
    } else if (outcome.result === 'failure') {
      void source.recordEvent('Warning', 'ConfigRejected', `kept configuration ${outcome.snapshot.hash}: ${firstErrors(outcome.errors)}`)
    }
  }
  const running = await serve(loaded.snapshot, { version: opts.version, overrides: opts.overrides, onReload })
  up(running)
  io.started?.(running)
  const code = await running.done
  await source.stop()
  return code
}
