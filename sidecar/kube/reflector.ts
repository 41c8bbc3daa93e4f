// One ConfigMap's key, read and followed through the API (a reflector, as client-go calls it).
//
// RBAC limits the pod to one ConfigMap (`resourceNames: [name]`); the API then authorises list and watch only
// when the request carries `fieldSelector=metadata.name=<name>`. client-node 1.x's `makeInformer` cannot send a
// field selector, and its `ListWatch` neither asks for bookmarks nor retries after a failure (it reports the error
// and stops), so this is a small reflector of our own over the library's `Watch` and generated clients:
//
//   open(): list (field selector) → the key's text and a resourceVersion
//   start(): watch from that resourceVersion (field selector, allowWatchBookmarks, timeoutSeconds)
//     ADDED/MODIFIED → onText when the key's text changed      DELETED → onProblem
//     BOOKMARK       → remember its resourceVersion            ERROR 410 (Gone) → relist, then watch again
//   the watch ends (server timeout)  → watch again from the last resourceVersion seen
//   it fails (network, 5xx, a stalled or silent connection) → exponential backoff with jitter, then watch again
//
// Changes made between open() and start() are not lost: the watch replays them from open()'s resourceVersion.
// Logs carry resourceVersions, sizes and counts, never the ConfigMap's content: it lists customers' origins.
import type { V1ConfigMap } from '@kubernetes/client-node'
import type { KubeClient } from './client.ts'
import { WatchRequests, type WatchEnd } from './watch.ts'

export interface ReflectorLog { info(o: object, msg: string): void; warn(o: object, msg: string): void; debug(o: object, msg: string): void }

export interface ReflectorOptions {
  /** The ConfigMap's namespace (the pod's own, from the downward API). */
  namespace: string
  /** The ConfigMap's name. */
  name: string
  /** The data key holding the YAML, e.g. `config.yaml`. */
  key: string
  log: ReflectorLog
  /** Reconnect backoff: doubles from initialMs up to maxMs, each delay drawn from [d/2, d]. Default 1 s → 30 s. */
  backoff?: { initialMs: number; maxMs: number }
  /** The watch's server-side timeout. Default: 5 to 10 minutes, drawn per watch (as client-go does). */
  watchTimeoutSeconds?: number
}

/** Consecutive failures of the watch before the caller hears about it (single blips are only logged). */
export const PROBLEM_AFTER_FAILURES = 3
const STARTUP_ATTEMPTS = 3

// Without a resourceVersion (no API server omits it) a watch starts from "now", which is still correct.
interface Listed { configMap: V1ConfigMap | undefined; resourceVersion: string | undefined }

export class ConfigMapReflector {
  readonly #client: KubeClient
  readonly #opts: ReflectorOptions
  readonly #log: ReflectorLog
  readonly #where: string
  readonly #fieldSelector: string
  readonly #path: string
  readonly #backoff: { initialMs: number; maxMs: number }
  readonly #watches: WatchRequests
  /** stop() aborts this: every request in flight, and any backoff sleep, end at once. */
  readonly #lifetime = new AbortController()

  /** Where the next watch resumes from: the last list, event or bookmark seen. */
  #resourceVersion: string | undefined
  /** The key's last text handed over (or read at open). */
  #last: string | undefined
  /** Deletion and a missing key are reported once per occurrence, not on every later event. */
  #objectState: 'ok' | 'deleted' | 'no-key' = 'ok'
  /** Consecutive failures of the watch or relist; reset by any success. */
  #failures = 0
  /** The handlers given to start(), which runs the only code that calls them. */
  #onText!: (text: string) => void
  #onProblem!: (message: string) => void
  #following: Promise<void> | undefined

  constructor (client: KubeClient, opts: ReflectorOptions) {
    this.#client = client
    this.#opts = opts
    this.#log = opts.log
    this.#where = `ConfigMap ${opts.namespace}/${opts.name}`
    this.#fieldSelector = `metadata.name=${opts.name}`
    this.#path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/configmaps`
    this.#backoff = opts.backoff ?? { initialMs: 1000, maxMs: 30_000 }
    this.#watches = new WatchRequests(client)
  }

  get #stopped (): boolean { return this.#lifetime.signal.aborted }

  /** The key's text now: one list, retried a little on transient failures, else a clear error. */
  async open (): Promise<string> {
    const first = await this.#firstList()
    if (first.configMap === undefined) {
      throw new Error(`${this.#where} does not exist (the list with fieldSelector=${this.#fieldSelector} is empty)`)
    }
    const text = first.configMap.data?.[this.#opts.key]
    if (text === undefined) {
      const keys = Object.keys(first.configMap.data ?? {})
      throw new Error(`${this.#where} has no key "${this.#opts.key}" (its keys: ${keys.length === 0 ? 'none' : keys.join(', ')})`)
    }
    this.#resourceVersion = first.resourceVersion
    this.#last = text
    this.#log.info({ resourceVersion: this.#resourceVersion, bytes: Buffer.byteLength(text) }, `read ${this.#where}`)
    return text
  }

  /** Follow changes from open() on: new texts of the key to onText; deletion, a missing key, a failing watch to onProblem. */
  start (onText: (text: string) => void, onProblem: (message: string) => void): void {
    this.#onText = onText
    this.#onProblem = onProblem
    this.#following = this.#follow()
  }

  /** Ends the watch, any request in flight and any pending retry; resolves once all of them are gone. */
  async stop (): Promise<void> {
    if (!this.#stopped) {
      this.#lifetime.abort()
      this.#watches.cut()
    }
    await this.#following
  }

  async #list (): Promise<Listed> {
    const { core } = this.#client
    const result = await this.#client.call((options) => core.listNamespacedConfigMap({ namespace: this.#opts.namespace, fieldSelector: this.#fieldSelector }, options), this.#lifetime.signal)
    return { configMap: result.items[0], resourceVersion: result.metadata?.resourceVersion }
  }

  async #firstList (): Promise<Listed> {
    let listed: Listed | undefined
    for (let attempt = 1; listed === undefined; attempt++) {
      try {
        listed = await this.#list()
      } catch (err) {
        const { text, status } = this.#client.explain(err)
        const transient = status === undefined || status >= 500 || status === 429
        if (!transient || attempt >= STARTUP_ATTEMPTS) throw new Error(`cannot read ${this.#where} from the Kubernetes API (${text})${this.#hint(status)}`)
        this.#log.warn({ attempt, err: text }, 'listing the ConfigMap failed; retrying')
        await this.#sleep(this.#delayFor(attempt))
      }
    }
    return listed
  }

  #hint (status: number | undefined): string {
    const { name, namespace } = this.#opts
    if (status === 403) return `; the pod's service account needs get, list and watch on configmaps with resourceNames: [${name}] in namespace ${namespace}`
    return status === 401 ? '; the API refused the service account token' : ''
  }

  async #follow (): Promise<void> {
    let relist = false
    while (!this.#stopped) {
      if (relist) {
        if (!await this.#relist()) continue
        relist = false
      }
      const started = Date.now()
      const end = await this.#watchOnce()
      if (this.#stopped) return
      relist = await this.#after(end, Date.now() - started)
    }
  }

  /** A list after 410 Gone; false (after a backoff) when it failed. */
  async #relist (): Promise<boolean> {
    try {
      const listed = await this.#list()
      this.#resourceVersion = listed.resourceVersion
      this.#log.info({ resourceVersion: this.#resourceVersion }, 'relisted')
      this.#observe(listed.configMap)
      this.#healthy()
      return true
    } catch (err) {
      if (this.#stopped) return false
      this.#failed('relisting the ConfigMap', err)
      await this.#sleep(this.#delayFor(this.#failures))
      return false
    }
  }

  /** What to do once a watch ended: true to relist first; a failure waits out its backoff here. */
  async #after (end: WatchEnd, livedMs: number): Promise<boolean> {
    if (end.kind === 'gone') {
      this.#log.info({ resourceVersion: this.#resourceVersion }, 'resourceVersion expired (410 Gone); relisting')
      return true
    }
    if (end.kind === 'closed' && livedMs >= this.#backoff.initialMs) {
      this.#log.debug({ resourceVersion: this.#resourceVersion }, 'the watch ended; resuming from the last resourceVersion')
      return false
    }
    // A watch the server closes at once is as broken as one that fails: back off rather than spin.
    this.#failed('watching the ConfigMap', end.kind === 'closed' ? new Error('the server closed the watch at once') : end.error)
    await this.#sleep(this.#delayFor(this.#failures))
    return false
  }

  async #watchOnce (): Promise<WatchEnd> {
    const timeoutSeconds = this.#opts.watchTimeoutSeconds ?? Math.round(300 * (1 + Math.random()))
    const query = { fieldSelector: this.#fieldSelector, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true as const, timeoutSeconds }
    this.#log.debug({ resourceVersion: this.#resourceVersion, timeoutSeconds }, 'watching')
    return await this.#watches.run(this.#path, query, (type, object) => { this.#event(type, object as V1ConfigMap) })
  }

  #event (type: string, configMap: V1ConfigMap): void {
    // Every watch event's object, bookmarks included, carries the resourceVersion to resume from.
    this.#resourceVersion = configMap.metadata?.resourceVersion
    this.#healthy()
    if (type === 'BOOKMARK') this.#log.debug({ resourceVersion: this.#resourceVersion }, 'bookmark')
    else this.#observe(type === 'DELETED' ? undefined : configMap)
  }

  /** The current state of the ConfigMap, from a watch event or a relist. */
  #observe (configMap: V1ConfigMap | undefined): void {
    const { key } = this.#opts
    if (configMap === undefined) {
      this.#problem('deleted', `${this.#where} was deleted; keeping the last good configuration`)
      return
    }
    const text = configMap.data?.[key]
    if (text === undefined) {
      this.#problem('no-key', `${this.#where} no longer has the key "${key}"; keeping the last good configuration`)
      return
    }
    this.#objectState = 'ok'
    if (text === this.#last) {
      this.#log.debug({ resourceVersion: this.#resourceVersion }, `${this.#where} changed, but not its key "${key}"`)
      return
    }
    this.#last = text
    this.#log.info({ resourceVersion: this.#resourceVersion, bytes: Buffer.byteLength(text) }, `${this.#where}: new text for "${key}"`)
    this.#notify('onText', text)
  }

  #problem (state: 'deleted' | 'no-key', message: string): void {
    if (this.#objectState === state) return
    this.#objectState = state
    this.#log.warn({ resourceVersion: this.#resourceVersion }, message)
    this.#notify('onProblem', message)
  }

  #healthy (): void {
    if (this.#failures >= PROBLEM_AFTER_FAILURES) this.#log.info({ resourceVersion: this.#resourceVersion }, `the watch on ${this.#where} works again`)
    this.#failures = 0
  }

  #failed (what: string, err: unknown): void {
    this.#failures++
    const { text } = this.#client.explain(err)
    this.#log.warn({ resourceVersion: this.#resourceVersion, failures: this.#failures, err: text }, `${what} failed; retrying`)
    if (this.#failures === PROBLEM_AFTER_FAILURES) {
      this.#notify('onProblem', `the watch on ${this.#where} keeps failing (${this.#failures} attempts; last: ${text}); keeping the last good configuration and retrying`)
    }
  }

  // The caller's handlers must not break the reflector: Watch silently swallows whatever its event callback throws,
  // and an exception in the retry loop would end it (and surface as an unhandled rejection).
  #notify (handler: 'onText' | 'onProblem', argument: string): void {
    try {
      if (handler === 'onText') this.#onText(argument)
      else this.#onProblem(argument)
    } catch (err) {
      this.#log.warn({ resourceVersion: this.#resourceVersion, err: this.#client.explain(err).text }, `the ${handler} handler threw`)
    }
  }

  async #sleep (ms: number): Promise<void> {
    const signal = this.#lifetime.signal
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done)
    })
  }

  #delayFor (failures: number): number {
    const ceiling = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** (failures - 1))
    return ceiling / 2 + Math.random() * ceiling / 2
  }
}
