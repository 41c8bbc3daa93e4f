// A ConfigMap's key, read through the Kubernetes API, as a ConfigSource (kube/reflector.ts does the work).
import type { KubeClient } from '../kube/client.ts'
import { ConfigMapReflector, type ReflectorOptions } from '../kube/reflector.ts'
import type { ConfigSource } from './source.ts'

/** The key's text now, and its changes from start() on. Rejects with a clear message when it cannot be read. */
export async function openConfigMapSource (client: KubeClient, opts: ReflectorOptions): Promise<ConfigSource> {
  const reflector = new ConfigMapReflector(client, opts)
  const text = await reflector.open()
  return {
    name: configMapSourceName(opts),
    text,
    start (onText, onProblem) {
      reflector.start(onText, (message) => { onProblem({ fields: { problem: message }, message: 'configuration source problem; keeping the last good configuration' }) })
    },
    stop: async () => { await reflector.stop() }
  }
}

export function configMapSourceName (opts: { namespace: string; name: string; key: string }): string {
  return `configmap ${opts.namespace}/${opts.name} key ${opts.key}`
}
