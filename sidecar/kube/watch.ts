// One watch request at a time over client-node's `Watch`, cancellable at any stage and bounded in time.
//
// Watch asks the KubeConfig for fetch options, with a new http(s).Agent, on every call, and gives back its
// AbortController only once the response headers arrived. Keeping the agent lets cut() and the header timeout
// destroy a connection that was accepted but never answered.
import type { KubeConfig, Watch } from '@kubernetes/client-node'
import type { KubeClient } from './client.ts'

export type WatchEnd = { kind: 'closed' } | { kind: 'gone' } | { kind: 'failed'; error: unknown }

export type WatchQuery = { fieldSelector: string; resourceVersion: string | undefined; allowWatchBookmarks: true; timeoutSeconds: number }

/** One watch request. `cut` aborts it at any stage, including before its response headers arrived. */
interface Attempt {
  cut: boolean
  finished: boolean
  timedOut: boolean
  /** Set by an ERROR event: how the server ended the watch. */
  outcome?: WatchEnd
  controller?: AbortController
  agent?: { destroy(): void }
}

export class WatchRequests {
  readonly #watch: Watch
  readonly #requestTimeoutMs: number
  #attempt: Attempt | undefined

  constructor (client: KubeClient) {
    const kc = client.config
    const watchConfig = Object.create(kc, {
      applyToFetchOptions: {
        value: async (o: object) => {
          const fetchOptions = await kc.applyToFetchOptions(o)
          const current = this.#attempt as Attempt
          if (current.cut) throw new Error('the watch was cancelled')
          current.agent = fetchOptions.agent as { destroy(): void }
          return fetchOptions
        }
      }
    }) as KubeConfig
    this.#watch = new client.k8s.Watch(watchConfig)
    this.#requestTimeoutMs = client.requestTimeoutMs
  }

  /** Ends the request in flight, if any, at whatever stage it is. */
  cut (): void {
    if (this.#attempt !== undefined) cutAttempt(this.#attempt)
  }

  /**
   * Watch until the server ends the watch, it fails or it is cut. First the response headers must arrive
   * within requestTimeoutMs, then the server must end the watch at timeoutSeconds: a connection that
   * silently died (no RST) would otherwise leave us watching nothing forever.
   */
  async run (path: string, query: WatchQuery, onEvent: (type: string, object: unknown) => void): Promise<WatchEnd> {
    const a: Attempt = { cut: false, finished: false, timedOut: false }
    this.#attempt = a
    const expire = (): void => { a.timedOut = true; cutAttempt(a) }
    let timer = setTimeout(expire, this.#requestTimeoutMs)
    const err = await new Promise<unknown>((resolve) => {
      const done = (error: unknown): void => { a.finished = true; resolve(error) }
      this.#watch.watch(path, query, (type, object) => { eventOf(a, type, object, onEvent) }, done).then((controller) => {
        a.controller = controller
        if (a.cut) controller.abort()
        else if (!a.finished) {
          clearTimeout(timer)
          timer = setTimeout(expire, query.timeoutSeconds * 1000 + this.#requestTimeoutMs)
        }
      }, done)
    })
    clearTimeout(timer)
    this.#attempt = undefined
    return endOf(a, err, query.timeoutSeconds)
  }
}

function cutAttempt (a: Attempt): void {
  a.cut = true
  a.controller?.abort()
  a.agent?.destroy()
}

function eventOf (a: Attempt, type: string, object: unknown, onEvent: (type: string, object: unknown) => void): void {
  if (type !== 'ERROR') { onEvent(type, object); return }
  // A Status object; the server closes the stream after it. 410: our resourceVersion is too old.
  const status = object as { code?: number; reason?: string; message?: string }
  a.outcome = status.code === 410
    ? { kind: 'gone' }
    : { kind: 'failed', error: new Error(`watch error ${String(status.code)} ${String(status.reason)}: ${String(status.message)}`) }
}

function endOf (a: Attempt, err: unknown, timeoutSeconds: number): WatchEnd {
  if (a.outcome !== undefined) return a.outcome
  if (a.timedOut) return { kind: 'failed', error: new Error(`the watch gave no answer or outlived its ${timeoutSeconds} s timeout`) }
  if (err === null || err === undefined) return { kind: 'closed' }
  if ((err as { statusCode?: unknown }).statusCode === 410) return { kind: 'gone' }
  return { kind: 'failed', error: err }
}
