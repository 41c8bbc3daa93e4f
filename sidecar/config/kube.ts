// Kubernetes mode (opt-in): read the configuration from a ConfigMap through the API and follow its changes,
// instead of waiting for the kubelet to rewrite a mounted volume (up to a minute or two later).
//
// RBAC limits the pod to one ConfigMap (`resourceNames: [name]`); the API then authorises list and watch only
// when the request carries `fieldSelector=metadata.name=<name>`. client-node 1.x's `makeInformer` cannot send a
// field selector, and its `ListWatch` neither asks for bookmarks nor retries after a failure (it reports the error
// and stops), so this module runs its own small reflector over the library's `Watch` and generated clients:
//
//   list (field selector) → initial text and resourceVersion
//   watch from that resourceVersion (field selector, allowWatchBookmarks, timeoutSeconds)
//     ADDED/MODIFIED → onText when the key's text changed      DELETED → onProblem
//     BOOKMARK       → remember its resourceVersion            ERROR 410 (Gone) → relist, then watch again
//   the watch ends (server timeout)  → watch again from the last resourceVersion seen
//   it fails (network, 5xx, a stalled or silent connection) → exponential backoff with jitter, then watch again
//
// The library itself is imported lazily: file mode never loads it (it pulls in node-fetch, ws, openid-client …).
// Logs carry resourceVersions, sizes and counts, never the ConfigMap's content: it lists customers' origins.
import type { ConfigurationOptions, EventsV1Event, KubeConfig, V1ConfigMap } from '@kubernetes/client-node'

export interface KubeSourceOptions {
  /** The ConfigMap's namespace (the pod's own, from the downward API). */
  namespace: string
  /** The ConfigMap's name. */
  name: string
  /** The data key holding the YAML, e.g. `config.yaml`. */
  key: string
  /** A new version of the YAML (the key's text changed); the caller validates it. */
  onText: (text: string) => void
  /** The ConfigMap was deleted, the key is missing, the watch keeps failing …: the caller logs it and keeps the last good config. */
  onProblem: (message: string) => void
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void; debug(o: object, msg: string): void }
  /** The pod that Events are about; no Events when absent. */
  pod?: { name: string; namespace: string; uid?: string }
  /** A @kubernetes/client-node KubeConfig, for tests; default: the in-cluster service account. */
  kubeConfig?: unknown
  /** Reconnect backoff: doubles from initialMs up to maxMs, each delay drawn from [d/2, d]. Default 1 s → 30 s. */
  backoff?: { initialMs: number; maxMs: number }
  /** Bound on a list or Event request, and on the wait for a watch's response headers. Default 30 s. */
  requestTimeoutMs?: number
  /** The watch's server-side timeout. Default: 5 to 10 minutes, drawn per watch (as client-go does). */
  watchTimeoutSeconds?: number
}

export interface KubeSource {
  /** The key's content at start. */
  initialText: string
  /** An events.k8s.io/v1 Event on the pod. Never throws: a failure is logged as a warning. */
  recordEvent (type: 'Normal' | 'Warning', reason: 'ConfigReloaded' | 'ConfigRejected', note: string): Promise<void>
  /** Ends the watch, any request in flight and any pending retry; resolves once all of them are gone. */
  stop (): Promise<void>
}

/** The name Events carry as their reporting controller (a qualified name, as the API requires). */
export const REPORTING_CONTROLLER = 'pai-cors-sidecar'
/** Consecutive failures of the watch before the caller hears about it (single blips are only logged). */
export const PROBLEM_AFTER_FAILURES = 3
/** The API refuses an Event whose note is longer than this many bytes. */
export const NOTE_MAX_BYTES = 1024
const STARTUP_ATTEMPTS = 3

/** Cut a string to at most `max` UTF-8 bytes without splitting a character, marking the cut with `…`. */
export function truncateUtf8 (text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = ''
  let bytes = 3 // the ellipsis
  for (const ch of text) {
    bytes += Buffer.byteLength(ch)
    if (bytes > max) break
    out += ch
  }
  return `${out}…`
}

type WatchEnd = { kind: 'closed' } | { kind: 'gone' } | { kind: 'failed'; error: unknown }

/** One watch request. `cut` aborts it at any stage, including before its response headers arrived. */
interface Attempt {
  cut: boolean
  finished: boolean
  controller?: AbortController
  agent?: { destroy(): void }
}

// Without a resourceVersion (no API server omits it) a watch starts from "now", which is still correct.
interface Listed { configMap: V1ConfigMap | undefined; resourceVersion: string | undefined }

export async function startKubeSource (opts: KubeSourceOptions): Promise<KubeSource> {
  const k8s = await import('@kubernetes/client-node')
  const { log, key } = opts
  const where = `ConfigMap ${opts.namespace}/${opts.name}`
  const fieldSelector = `metadata.name=${opts.name}`
  const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/configmaps`
  const backoff = opts.backoff ?? { initialMs: 1000, maxMs: 30_000 }
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000

  let kc: KubeConfig
  if (opts.kubeConfig === undefined) {
    // loadFromCluster() does not check anything: without these variables it builds `https://undefined:undefined`.
    if (process.env.KUBERNETES_SERVICE_HOST === undefined || process.env.KUBERNETES_SERVICE_PORT === undefined) {
      throw new Error('Kubernetes mode must run in a pod: KUBERNETES_SERVICE_HOST/PORT are not set')
    }
    kc = new k8s.KubeConfig()
    kc.loadFromCluster()
  } else {
    kc = opts.kubeConfig as KubeConfig
  }
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const events = kc.makeApiClient(k8s.EventsV1Api)

  // stop() aborts this: every request in flight, and any backoff sleep, end at once.
  const lifetime = new AbortController()
  let stopped = false

  // The generated clients take no AbortSignal argument; a call-time middleware puts one on the request. They
  // must be the library's Observable-style middlewares (as its own setHeaderOptions builds): a Promise-style one
  // fails with "toPromise is not a function". 'append' keeps whatever the KubeConfig's client set up.
  const callOptions = (signal: AbortSignal): ConfigurationOptions => ({
    middleware: [{
      pre: (ctx) => { ctx.setSignal(signal); return new k8s.Observable(Promise.resolve(ctx)) },
      post: (res) => new k8s.Observable(Promise.resolve(res))
    }],
    middlewareMergeStrategy: 'append'
  })

  /** A list or create call, bounded in time and aborted by stop(). */
  async function call<T> (fn: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const timeout = new AbortController()
    const timer = setTimeout(() => { timeout.abort() }, requestTimeoutMs)
    const signal = AbortSignal.any([lifetime.signal, timeout.signal])
    // Promise.resolve().then: even a synchronous throw from the client comes out here, where the timer is cleared.
    const request = Promise.resolve().then(async () => await fn(callOptions(signal)))
    return await request
      .catch((err: unknown) => { throw timeout.signal.aborted ? new Error(`no answer from the Kubernetes API within ${requestTimeoutMs} ms`) : err })
      .finally(() => { clearTimeout(timer) })
  }

  /** A short, log-safe description and the HTTP status, whichever layer of client-node the error came from. */
  function explain (err: unknown): { text: string; status: number | undefined } {
    if (err instanceof k8s.ApiException) {
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

  async function list (): Promise<Listed> {
    const result = await call((options) => core.listNamespacedConfigMap({ namespace: opts.namespace, fieldSelector }, options))
    return { configMap: result.items[0], resourceVersion: result.metadata?.resourceVersion }
  }

  const sleep = async (ms: number): Promise<void> => {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        lifetime.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      lifetime.signal.addEventListener('abort', done)
    })
  }
  const delayFor = (failures: number): number => {
    const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 1))
    return ceiling / 2 + Math.random() * ceiling / 2
  }

  // ── start: one list, retried a little on transient failures, then a clear error ─────────────────────────────
  let first: Listed | undefined
  for (let attempt = 1; first === undefined; attempt++) {
    try {
      first = await list()
    } catch (err) {
      const { text, status } = explain(err)
      const transient = status === undefined || status >= 500 || status === 429
      if (!transient || attempt >= STARTUP_ATTEMPTS) {
        const hint = status === 403
          ? `; the pod's service account needs get, list and watch on configmaps with resourceNames: [${opts.name}] in namespace ${opts.namespace}`
          : status === 401 ? '; the API refused the service account token' : ''
        throw new Error(`cannot read ${where} from the Kubernetes API (${text})${hint}`)
      }
      log.warn({ attempt, err: text }, 'listing the ConfigMap failed; retrying')
      await sleep(delayFor(attempt))
    }
  }
  if (first.configMap === undefined) {
    throw new Error(`${where} does not exist (the list with fieldSelector=${fieldSelector} is empty)`)
  }
  const initial = first.configMap.data?.[key]
  if (initial === undefined) {
    const keys = Object.keys(first.configMap.data ?? {})
    throw new Error(`${where} has no key "${key}" (its keys: ${keys.length === 0 ? 'none' : keys.join(', ')})`)
  }
  let resourceVersion = first.resourceVersion
  log.info({ resourceVersion, bytes: Buffer.byteLength(initial) }, `read ${where}`)

  // ── following changes ─────────────────────────────────────────────────────────────────────────────────────
  let last = initial
  // Report deletion / a missing key once per occurrence, not on every later event.
  let objectState: 'ok' | 'deleted' | 'no-key' = 'ok'
  let failures = 0

  // The caller's handlers must not break the reflector: Watch silently swallows whatever its event callback throws,
  // and an exception in the retry loop would end it (and surface as an unhandled rejection).
  const notify = (handler: 'onText' | 'onProblem', argument: string): void => {
    try {
      opts[handler](argument)
    } catch (err) {
      log.warn({ resourceVersion, err: explain(err).text }, `the ${handler} handler threw`)
    }
  }

  const problem = (state: 'deleted' | 'no-key', message: string): void => {
    if (objectState === state) return
    objectState = state
    log.warn({ resourceVersion }, message)
    notify('onProblem', message)
  }

  /** The current state of the ConfigMap, from a watch event or a relist. */
  const observe = (configMap: V1ConfigMap | undefined): void => {
    if (configMap === undefined) {
      problem('deleted', `${where} was deleted; keeping the last good configuration`)
      return
    }
    const text = configMap.data?.[key]
    if (text === undefined) {
      problem('no-key', `${where} no longer has the key "${key}"; keeping the last good configuration`)
      return
    }
    objectState = 'ok'
    if (text === last) {
      log.debug({ resourceVersion }, `${where} changed, but not its key "${key}"`)
      return
    }
    last = text
    log.info({ resourceVersion, bytes: Buffer.byteLength(text) }, `${where}: new text for "${key}"`)
    notify('onText', text)
  }

  const healthy = (): void => {
    if (failures >= PROBLEM_AFTER_FAILURES) log.info({ resourceVersion }, `the watch on ${where} works again`)
    failures = 0
  }
  const failed = (what: string, err: unknown): void => {
    failures++
    const { text } = explain(err)
    log.warn({ resourceVersion, failures, err: text }, `${what} failed; retrying`)
    if (failures === PROBLEM_AFTER_FAILURES) {
      notify('onProblem', `the watch on ${where} keeps failing (${failures} attempts; last: ${text}); keeping the last good configuration and retrying`)
    }
  }

  // Watch asks the KubeConfig for fetch options, with a new http(s).Agent, on every call, and gives back its
  // AbortController only once the response headers arrived. Keeping the agent lets stop() and the header
  // timeout destroy a connection that was accepted but never answered.
  let attempt: Attempt | undefined
  const watchConfig = Object.create(kc, {
    applyToFetchOptions: {
      value: async (o: object) => {
        const fetchOptions = await kc.applyToFetchOptions(o)
        const current = attempt as Attempt
        if (current.cut) throw new Error('the watch was cancelled')
        current.agent = fetchOptions.agent as { destroy(): void }
        return fetchOptions
      }
    }
  }) as KubeConfig
  const watcher = new k8s.Watch(watchConfig)
  const cut = (a: Attempt): void => {
    a.cut = true
    a.controller?.abort()
    a.agent?.destroy()
  }

  async function watchOnce (): Promise<WatchEnd> {
    const a: Attempt = { cut: false, finished: false }
    attempt = a
    let outcome: WatchEnd | undefined
    let timedOut = false
    const expire = (): void => { timedOut = true; cut(a) }
    // First the response headers must arrive in time, then the server must end the watch at timeoutSeconds:
    // a connection that silently died (no RST) would otherwise leave us watching nothing forever.
    let timer = setTimeout(expire, requestTimeoutMs)
    const timeoutSeconds = opts.watchTimeoutSeconds ?? Math.round(300 * (1 + Math.random()))
    const query = { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds }
    log.debug({ resourceVersion, timeoutSeconds }, 'watching')

    const onEvent = (type: string, object: unknown): void => {
      if (type === 'ERROR') {
        // A Status object; the server closes the stream after it. 410: our resourceVersion is too old.
        const status = object as { code?: number; reason?: string; message?: string }
        outcome = status.code === 410
          ? { kind: 'gone' }
          : { kind: 'failed', error: new Error(`watch error ${String(status.code)} ${String(status.reason)}: ${String(status.message)}`) }
        return
      }
      // Every watch event's object, bookmarks included, carries the resourceVersion to resume from.
      const configMap = object as V1ConfigMap
      resourceVersion = configMap.metadata?.resourceVersion
      healthy()
      if (type === 'BOOKMARK') log.debug({ resourceVersion }, 'bookmark')
      else observe(type === 'DELETED' ? undefined : configMap)
    }

    const err = await new Promise<unknown>((resolve) => {
      const done = (error: unknown): void => {
        a.finished = true
        resolve(error)
      }
      watcher.watch(path, query, onEvent, done).then((controller) => {
        a.controller = controller
        if (a.cut) controller.abort()
        else if (!a.finished) {
          clearTimeout(timer)
          timer = setTimeout(expire, timeoutSeconds * 1000 + requestTimeoutMs)
        }
      }, done)
    })
    clearTimeout(timer)
    attempt = undefined
    if (outcome !== undefined) return outcome
    if (timedOut) return { kind: 'failed', error: new Error(`the watch gave no answer or outlived its ${timeoutSeconds} s timeout`) }
    if (err === null || err === undefined) return { kind: 'closed' }
    if ((err as { statusCode?: unknown }).statusCode === 410) return { kind: 'gone' }
    return { kind: 'failed', error: err }
  }

  async function follow (): Promise<void> {
    let relist = false
    while (!stopped) {
      if (relist) {
        try {
          const listed = await list()
          resourceVersion = listed.resourceVersion
          log.info({ resourceVersion }, 'relisted')
          observe(listed.configMap)
          relist = false
          healthy()
        } catch (err) {
          if (stopped) return
          failed('relisting the ConfigMap', err)
          await sleep(delayFor(failures))
          continue
        }
      }
      const started = Date.now()
      const end = await watchOnce()
      if (stopped) return
      if (end.kind === 'gone') {
        log.info({ resourceVersion }, 'resourceVersion expired (410 Gone); relisting')
        relist = true
      } else if (end.kind === 'closed' && Date.now() - started >= backoff.initialMs) {
        log.debug({ resourceVersion }, 'the watch ended; resuming from the last resourceVersion')
      } else {
        // A watch the server closes at once is as broken as one that fails: back off rather than spin.
        failed('watching the ConfigMap', end.kind === 'closed' ? new Error('the server closed the watch at once') : end.error)
        await sleep(delayFor(failures))
      }
    }
  }
  const following = follow()

  // ── Events ────────────────────────────────────────────────────────────────────────────────────────────────
  const inFlight = new Set<Promise<void>>()
  async function post (type: 'Normal' | 'Warning', reason: string, note: string, pod: { name: string; namespace: string; uid?: string }): Promise<void> {
    const body: EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
      // V1MicroTime serialises with six fractional digits, as the API parses it. A plain Date type-checks here
      // too (the classes are structurally equal) but is sent with three and refused with 400.
      eventTime: new k8s.V1MicroTime(),
      action: 'Reload',
      reason,
      note: truncateUtf8(note, NOTE_MAX_BYTES),
      type,
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: pod.name.slice(0, 128), // the API's limit; pod names may have up to 253 characters
      regarding: { kind: 'Pod', apiVersion: 'v1', name: pod.name, namespace: pod.namespace, uid: pod.uid }
    }
    try {
      await call((options) => events.createNamespacedEvent({ namespace: pod.namespace, body }, options))
      log.debug({ type, reason }, 'recorded a Kubernetes Event')
    } catch (err) {
      log.warn({ type, reason, err: explain(err).text }, 'could not record a Kubernetes Event')
    }
  }

  return {
    initialText: initial,
    async recordEvent (type, reason, note) {
      if (opts.pod === undefined || stopped) return
      const p = post(type, reason, note, opts.pod)
      inFlight.add(p)
      await p
      inFlight.delete(p)
    },
    async stop () {
      if (!stopped) {
        stopped = true
        lifetime.abort()
        if (attempt !== undefined) cut(attempt)
      }
      await following
      await Promise.all(inFlight)
    }
  }
}
