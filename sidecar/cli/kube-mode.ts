// Kubernetes mode (`--config-source kubernetes`): the configuration comes from one ConfigMap read through
// the API, every change is applied as it happens, and each accepted or rejected change is recorded as
// an Event on the sidecar's own pod, so `kubectl describe pod` shows why an origin was not applied.
import { configMapSourceName, openConfigMapSource } from '../config/configmap-source.ts'
import type { ConfigSource } from '../config/source.ts'
import { connectKube, type KubeClient } from '../kube/client.ts'
import { EventRecorder, type EventPod } from '../kube/events.ts'
import { ReloadEvents } from '../kube/reload-events.ts'
import { createLogger } from '../log.ts'
import type { Io } from './io.ts'
import type { Mode } from './serve.ts'

export interface KubeModeOptions {
  namespace: string
  name: string
  key: string
  pod: EventPod | undefined
  /** A kubeconfig file (from KUBECONFIG) to use instead of the in-cluster service account. */
  kubeconfigPath: string | undefined
  logLevel: string | undefined
}

/** The ConfigMap as the configuration source, with Events for its reloads; an exit code when it cannot be read. */
export async function openConfigMapMode (opts: KubeModeOptions, io: Io): Promise<Mode | number> {
  const log = createLogger(opts.logLevel ?? 'info')
  let client: KubeClient
  let source: ConfigSource
  try {
    client = await connectKube({ kubeconfigPath: opts.kubeconfigPath })
    source = await openConfigMapSource(client, { namespace: opts.namespace, name: opts.name, key: opts.key, log })
  } catch (err) {
    io.err(`${configMapSourceName(opts)}: ${(err as Error).message}\n`)
    return 2
  }
  const events = new EventRecorder(client, opts.pod, log)
  return { source, reporter: new ReloadEvents(events), close: async () => { await events.stop() } }
}
