// Admission control in front of the GPU: at most `maxConcurrent` requests in flight to the upstream,
// the rest wait in a bounded FIFO queue (docs/OPERATIONS.md, "Overload: admission control"). Private AI documents ~32 concurrent requests per GPU
// and no queueing or 429/503 of its own, so overload has to become graceful here, not there.
import type { Metrics } from './metrics.ts'

export type Rejection = 'full' | 'timeout' | 'abandoned'

export class AdmissionRejected extends Error {
  readonly reason: Rejection
  constructor (reason: Rejection) {
    super(`not admitted: ${reason}`)
    this.reason = reason
  }
}

interface Waiter {
  grant: (release: () => void) => void
  reject: (err: AdmissionRejected) => void
  timer: NodeJS.Timeout
  since: number
}

export interface AdmissionOptions {
  maxConcurrent: number
  queueSize: number
  queueTimeoutMs: number
  metrics: Metrics
}

export class Admission {
  #active = 0
  // A plain array: shift() is O(n) but n is bounded by queue.size (256 by default) and it keeps FIFO
  // order obvious; removal of an abandoned waiter is the same O(n).
  readonly #queue: Waiter[] = []
  readonly #opts: AdmissionOptions

  constructor (opts: AdmissionOptions) {
    this.#opts = opts
    opts.metrics.queueCapacity.set(opts.queueSize)
    opts.metrics.queueDepth.set(0)
  }

  get active (): number { return this.#active }
  get queued (): number { return this.#queue.length }

  /**
   * Resolves with a release function once the request may go to the upstream. `onAbandon` lets the
   * caller withdraw a queued request whose client went away: it leaves the queue at once and never
   * reaches the upstream.
   */
  acquire (onAbandon: (withdraw: () => void) => void): Promise<() => void> {
    const m = this.#opts.metrics
    if (this.#active < this.#opts.maxConcurrent) {
      this.#active++
      m.queueWait.observe(0)
      return Promise.resolve(this.#releaser())
    }
    if (this.#queue.length >= this.#opts.queueSize) {
      m.queueRejections.inc({ reason: 'full' })
      return Promise.reject(new AdmissionRejected('full'))
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        since: performance.now(),
        grant: resolve,
        reject,
        timer: setTimeout(() => this.#drop(waiter, 'timeout'), this.#opts.queueTimeoutMs)
      }
      this.#queue.push(waiter)
      m.queueDepth.set(this.#queue.length)
      onAbandon(() => this.#drop(waiter, 'abandoned'))
    })
  }

  #drop (waiter: Waiter, reason: Rejection): void {
    const i = this.#queue.indexOf(waiter)
    if (i === -1) return // already granted
    this.#queue.splice(i, 1)
    clearTimeout(waiter.timer)
    const m = this.#opts.metrics
    m.queueDepth.set(this.#queue.length)
    m.queueRejections.inc({ reason })
    waiter.reject(new AdmissionRejected(reason))
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#queue.shift()
      if (next === undefined) { this.#active--; return }
      // The slot passes straight to the oldest waiter: `active` stays the same.
      clearTimeout(next.timer)
      const m = this.#opts.metrics
      m.queueDepth.set(this.#queue.length)
      m.queueWait.observe((performance.now() - next.since) / 1000)
      next.grant(this.#releaser())
    }
  }
}
