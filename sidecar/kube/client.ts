// The Kubernetes API as the ConfigMap reflector and the Event recorder use it: the library loaded lazily
// (file mode never loads it: it pulls in node-fetch, ws, openid-client …), one KubeConfig (the in-cluster
// service account, a kubeconfig file, or one given by a test), and calls bounded in time and abortable.
import type { ConfigurationOptions, CoreV1Api, EventsV1Api, KubeConfig } from '@kubernetes/client-node'

export type K8s = typeof import('@kubernetes/client-node')

export interface KubeClientOptions {
  /** A kubeconfig file (KUBECONFIG) to use instead of the in-cluster service account. */
  kubeconfigPath?: string | undefined
  /** A @kubernetes/client-node KubeConfig, for tests. */
  kubeConfig?: unknown
  /** Bound on a list or create request, and on the wait for a watch's response headers. Default 30 s. */
  requestTimeoutMs?: number | undefined
}

/** A short, log-safe description of a failed call, and its HTTP status when there was one. */
export interface CallError { text: string; status: number | undefined }

export class KubeClient {
  readonly k8s: K8s
  readonly config: KubeConfig
  readonly core: CoreV1Api
  readonly events: EventsV1Api
  readonly requestTimeoutMs: number

  constructor (k8s: K8s, config: KubeConfig, requestTimeoutMs: number) {
    this.k8s = k8s
    this.config = config
    this.core = config.makeApiClient(k8s.CoreV1Api)
    this.events = config.makeApiClient(k8s.EventsV1Api)
    this.requestTimeoutMs = requestTimeoutMs
  }

  /** A list or create call, bounded by requestTimeoutMs and aborted by `signal`. */
  async call<T> (fn: (options: ConfigurationOptions) => Promise<T>, signal: AbortSignal): Promise<T> {
    const timeout = new AbortController()
    const timer = setTimeout(() => { timeout.abort() }, this.requestTimeoutMs)
    const options = this.#withSignal(AbortSignal.any([signal, timeout.signal]))
    // Promise.resolve().then: even a synchronous throw from the client comes out here, where the timer is cleared.
    const request = Promise.resolve().then(async () => await fn(options))
    return await request
      .catch((err: unknown) => { throw timeout.signal.aborted ? new Error(`no answer from the Kubernetes API within ${this.requestTimeoutMs} ms`) : err })
      .finally(() => { clearTimeout(timer) })
  }

  // The generated clients take no AbortSignal argument; a call-time middleware puts one on the request. They
  // must be the library's Observable-style middlewares (as its own setHeaderOptions builds): a Promise-style one
  // fails with "toPromise is not a function". 'append' keeps whatever the KubeConfig's client set up.
  #withSignal (signal: AbortSignal): ConfigurationOptions {
    const { Observable } = this.k8s
    return {
      middleware: [{
        pre: (ctx) => { ctx.setSignal(signal); return new Observable(Promise.resolve(ctx)) },
        post: (res) => new Observable(Promise.resolve(res))
      }],
      middlewareMergeStrategy: 'append'
    }
  }

  /** What went wrong, whichever layer of client-node the error came from. */
  explain (err: unknown): CallError {
    if (err instanceof this.k8s.ApiException) {
      // Error bodies arrive as text (ResponseContext.getBodyAsAny): from an API server, a JSON Status object.
      let detail = ''
      try {
        const status = JSON.parse(String(err.body)) as { message?: unknown }
        if (typeof status.message === 'string') detail = `: ${status.message}`
      } catch {}
      return { text: `HTTP ${err.code}${detail}`, status: err.code }
    }
    // Watch rejects a non-200 answer with an Error carrying only statusCode and the status text.
    const statusCode = (Object(err) as { statusCode?: unknown }).statusCode // Object(): whatever was thrown, even null
    const message = err instanceof Error ? err.message : String(err)
    if (typeof statusCode === 'number') return { text: `HTTP ${statusCode} ${message}`, status: statusCode }
    return { text: message, status: undefined }
  }
}

export async function connectKube (opts: KubeClientOptions = {}): Promise<KubeClient> {
  const k8s = await import('@kubernetes/client-node')
  let config: KubeConfig
  if (opts.kubeConfig !== undefined) {
    config = opts.kubeConfig as KubeConfig
  } else if (opts.kubeconfigPath !== undefined) {
    config = new k8s.KubeConfig()
    config.loadFromFile(opts.kubeconfigPath)
  } else {
    // loadFromCluster() does not check anything: without these variables it builds `https://undefined:undefined`.
    if (process.env.KUBERNETES_SERVICE_HOST === undefined || process.env.KUBERNETES_SERVICE_PORT === undefined) {
      throw new Error('Kubernetes mode must run in a pod: KUBERNETES_SERVICE_HOST/PORT are not set')
    }
    config = new k8s.KubeConfig()
    config.loadFromCluster()
  }
  return new KubeClient(k8s, config, opts.requestTimeoutMs ?? 30_000)
}
